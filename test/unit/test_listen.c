/* SPDX-License-Identifier: MIT */
/*
 * The doors of the daemons: which listen addresses are exposed without TLS, and the API's
 * ipc:// socket, which only its group may connect to.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <grp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <criterion/criterion.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>

#include "dt_listen.h"

Test(listen, plain_tcp_beyond_loopback_is_exposed)
{
	static const char *const exposed[] = {
		"tcp://0.0.0.0:7400",	"tcp://*:7400",		"tcp://:7400",
		"tcp://10.0.0.1:7400",	"tcp://[::]:7400",	"tcp6://[2001:db8::1]:7400",
		"tcp4://192.168.1.1:1", "tcp://collector:7400",
	};
	static const char *const closed[] = {
		"tcp://127.0.0.1:7400",
		"tcp://127.9.9.9:7400",
		"tcp://[::1]:7400",
		"tcp://localhost:7400",
		"tcp://[::ffff:127.0.0.1]:7400",
		"tls+tcp://0.0.0.0:7400",
		"ipc:///run/dyetrace/api.sock",
		"inproc://x",
	};

	for (size_t i = 0; i < sizeof(exposed) / sizeof(exposed[0]); i++)
		cr_expect(dt_listen_exposed(exposed[i]), "%s is exposed", exposed[i]);
	for (size_t i = 0; i < sizeof(closed) / sizeof(closed[0]); i++)
		cr_expect(!dt_listen_exposed(closed[i]), "%s is not exposed", closed[i]);
}

/* Runs the warning for url with stderr in a file; returns what it logged (static). */
static const char *logged_for(const char *url, bool *warned)
{
	static char text[1024];
	FILE *f = tmpfile();
	int saved = dup(2);
	size_t n;

	cr_assert(f && saved >= 0);
	fflush(stderr);
	dup2(fileno(f), 2);
	*warned = dt_listen_warn_exposed(url, "anyone who reaches the port can inject samples");
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	rewind(f);
	n = fread(text, 1, sizeof(text) - 1, f);
	text[n] = '\0';
	fclose(f);
	return text;
}

Test(listen, the_warning_names_the_risk_with_a_message_id)
{
	bool warned;
	const char *log = logged_for("tcp://0.0.0.0:7400", &warned);

	cr_assert(warned);
	cr_assert(strstr(log, "warn DT-LISTEN-PLAIN: tcp://0.0.0.0:7400 is plain TCP") &&
			  strstr(log, "anyone who reaches the port can inject samples"),
		  "%s", log);
	log = logged_for("tcp://127.0.0.1:7400", &warned);
	cr_assert(!warned);
	cr_assert_str_eq(log, "");
}

/* Connects to the Unix socket path as uid/gid 65534 with the supplementary group extra
 * (or none: (gid_t)-1), in a child process. Returns 0 or the errno of connect(). */
static int connect_as_nobody(const char *path, gid_t extra)
{
	pid_t pid = fork();
	int status;

	cr_assert_geq(pid, 0);
	if (pid == 0) {
		struct sockaddr_un sa = {.sun_family = AF_UNIX};
		int fd;

		if (setgroups(extra == (gid_t)-1 ? 0 : 1, &extra) || setgid(65534) || setuid(65534))
			_exit(100);
		strcpy(sa.sun_path, path);
		fd = socket(AF_UNIX, SOCK_STREAM, 0);
		_exit(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 ? 0 : errno);
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status));
	cr_assert_neq(WEXITSTATUS(status), 100, "cannot drop privileges");
	return WEXITSTATUS(status);
}

Test(listen, api_socket_is_for_its_group_only)
{
	const gid_t group = 64999; /* no one's: only the members we give it */
	char dir[] = "/tmp/dt-test-listen-XXXXXX", path[128], url[160], err[256] = "";
	nng_socket s;
	struct stat st;

	if (geteuid() != 0)
		cr_skip_test("needs root to create a socket for another group and switch users");
	cr_assert_not_null(mkdtemp(dir));
	cr_assert_eq(chmod(dir, 0755), 0); /* the directory lets anyone reach the socket */
	snprintf(path, sizeof(path), "%s/api.sock", dir);
	snprintf(url, sizeof(url), "ipc://%s", path);
	cr_assert_eq(nng_rep0_open(&s), 0);
	cr_assert_eq(dt_listen_private(s, url, group, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(st.st_mode & 07777, DT_IPC_MODE, "mode %o", st.st_mode & 07777);
	cr_assert_eq(st.st_gid, group);
	cr_assert_eq(connect_as_nobody(path, (gid_t)-1), EACCES, "outside the group: refused");
	cr_assert_eq(connect_as_nobody(path, group), 0, "in the group: connects");
	nng_close(s);
	unlink(path);
	rmdir(dir);
}
