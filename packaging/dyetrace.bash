# bash completion for dyetrace(1)                             -*- shell-script -*-
# SPDX-License-Identifier: MIT
#
# Installed as /usr/share/bash-completion/completions/dyetrace (bash-completion loads it
# when "dyetrace" is first completed); it needs nothing from bash-completion itself, so
# `. packaging/dyetrace.bash` works too. Completes the commands, each command's options and
# the values of --proto, --direction and --format, file names after -o/--output, and task
# IDs (asking the analyzer, with the -a and --token given so far, for at most one second).
# test/pkg/test_completion.sh checks it against `dyetrace --help`.

_dyetrace_common_opts='-a --analyzer -j --json -t --timeout --token -h --help'

# _dyetrace_ids PROGRAM WORDS...: the tenant's task IDs, from `PROGRAM task list` with the
# -a and --token among WORDS (nothing when the analyzer cannot be asked).
_dyetrace_ids() {
	local prog=$1 i args=()
	shift
	for ((i = 1; i <= $#; i++)); do
		case ${!i} in
		-a | --analyzer | --token)
			args+=("${!i}")
			((i++))
			args+=("${!i}")
			;;
		--analyzer=* | --token=*) args+=("${!i}") ;;
		esac
	done
	"$prog" "${args[@]}" -t 1000 task list 2>/dev/null |
		awk 'NR > 1 && $1 ~ /^[0-9]+$/ { print $1 }'
}

_dyetrace() {
	# The words before the cursor, split at blanks only: COMP_WORDS also splits at ':' and
	# '=', which would cut an option's URL value (-a ipc:///run/...) in pieces.
	local line=${COMP_LINE:0:COMP_POINT} toks cur prev
	local i w cmd='' sub='' opts words
	read -ra toks <<<"$line"
	if [[ $line =~ [[:blank:]]$ ]]; then
		cur=''
	else
		cur=${toks[-1]}
		unset 'toks[-1]'
	fi
	prev=${toks[-1]}
	COMPREPLY=()

	# The value of an option
	case $prev in
	--proto)
		mapfile -t COMPREPLY < <(compgen -W 'tcp udp icmp' -- "$cur")
		return
		;;
	--direction)
		mapfile -t COMPREPLY < <(compgen -W 'request reply both' -- "$cur")
		return
		;;
	--format)
		mapfile -t COMPREPLY < <(compgen -W 'text json dot svg html pcapng' -- "$cur")
		return
		;;
	-o | --output)
		compopt -o filenames 2>/dev/null
		mapfile -t COMPREPLY < <(compgen -f -- "$cur")
		return
		;;
	-a | --analyzer | -t | --timeout | --token | -n | --packets | --src | --dst | --sport | \
		--dport | --vni | --budget | --duration | --rate | --interval)
		return
		;;
	esac

	# The command and subcommand typed so far (skipping options and their values)
	for ((i = 1; i < ${#toks[@]}; i++)); do
		w=${toks[i]}
		case $w in
		-a | --analyzer | -t | --timeout | --token | -n | --packets | -o | --output | --src | \
			--dst | --sport | --dport | --proto | --vni | --direction | --budget | \
			--duration | --rate | --interval | --format)
			((i++))
			;;
		-*) ;;
		*)
			if [[ -z $cmd ]]; then
				cmd=$w
			elif [[ $cmd == task && -z $sub ]]; then
				sub=$w
			fi
			;;
		esac
	done

	if [[ -z $cmd ]]; then
		words="task report help $_dyetrace_common_opts --version"
	elif [[ $cmd == task && -z $sub ]]; then
		words="create list show cancel watch help"
	else
		opts=$_dyetrace_common_opts
		case $cmd/$sub in
		task/create)
			opts+=' --src --dst --sport --dport --proto --vni --direction --budget --duration --rate'
			;;
		task/watch) opts+=' --interval' ;;
		report/) opts+=' -n --packets --format -o --output' ;;
		esac
		if [[ $cur == -* ]]; then
			words=$opts
		else
			case $cmd/$sub in
			task/show | task/cancel | task/watch | report/) words=$(_dyetrace_ids "${toks[0]}" "${toks[@]:1}") ;;
			*) words='' ;;
			esac
		fi
	fi
	mapfile -t COMPREPLY < <(compgen -W "$words" -- "$cur")
}
complete -F _dyetrace dyetrace
