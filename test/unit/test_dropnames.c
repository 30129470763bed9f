/* SPDX-License-Identifier: MIT */
/* Drop reason names from the running kernel's BTF, and kernel symbolization. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "dropnames.h"
#include "ksyms.h"

Test(dropnames, core_reasons_come_from_btf)
{
	struct dt_dropnames *dn = NULL;
	char buf[96];

	cr_assert_eq(dt_dropnames_open(&dn), 0, "the kernel must have BTF");
	/* Values 1 and 2 have been stable since drop reasons exist (v5.17). */
	cr_assert_str_eq(dt_dropname(dn, 1, buf, sizeof(buf)), "CONSUMED");
	cr_assert_str_eq(dt_dropname(dn, 2, buf, sizeof(buf)), "NOT_SPECIFIED");
	/* A value past the end of the enum, and an unknown subsystem. */
	cr_assert_str_eq(dt_dropname(dn, 0xfff0, buf, sizeof(buf)), "UNKNOWN_65520");
	cr_assert_str_eq(dt_dropname(dn, 0x7fff0001, buf, sizeof(buf)), "UNKNOWN_2147418113");
	dt_dropnames_close(dn);
}

Test(dropnames, every_core_value_has_a_distinct_name)
{
	struct dt_dropnames *dn = NULL;
	char a[96], b[96];
	int found_netfilter = 0;

	cr_assert_eq(dt_dropnames_open(&dn), 0);
	for (uint32_t v = 2; v < 200; v++) {
		dt_dropname(dn, v, a, sizeof(a));
		if (strcmp(a, "NETFILTER_DROP") == 0)
			found_netfilter = 1;
		cr_assert_null(strstr(a, "SKB_"), "prefix not stripped: %s", a);
		if (v > 2 && strncmp(a, "UNKNOWN_", 8) != 0) {
			dt_dropname(dn, v - 1, b, sizeof(b));
			cr_assert_str_neq(a, b);
		}
	}
	cr_assert(found_netfilter, "NETFILTER_DROP not among the first reasons");
	dt_dropnames_close(dn);
}

Test(dropnames, subsystem_reason_without_module_names_its_subsystem)
{
	struct dt_dropnames *dn = NULL;
	char buf[96];

	cr_assert_eq(dt_dropnames_open(&dn), 0);
	/* Subsystem 2 is OPENVSWITCH; its module is normally not loaded here. */
	dt_dropname(dn, 2u << 16 | 7, buf, sizeof(buf));
	cr_assert(strcmp(buf, "OPENVSWITCH:7") == 0 || strncmp(buf, "OVS_DROP_", 9) == 0, "%s",
		  buf);
	dt_dropnames_close(dn);
}

Test(ksyms, resolves_to_the_enclosing_symbol)
{
	char path[] = "/tmp/dt-ksyms-XXXXXX", buf[96];
	struct dt_ksyms *ks = NULL;
	FILE *f;
	int fd = mkstemp(path);

	cr_assert(fd >= 0);
	f = fdopen(fd, "w");
	fputs("ffffffff81000000 T _stext\n"
	      "ffffffff81000100 t nf_hook_slow\n"
	      "ffffffff81000200 D some_data\n"
	      "ffffffff81000300 T ip_rcv_core\t[kernel]\n",
	      f);
	fclose(f);
	cr_assert_eq(dt_ksyms_load(path, &ks), 0);
	unlink(path);
	cr_assert_str_eq(dt_ksym(ks, 0xffffffff8100018cull, buf, sizeof(buf)), "nf_hook_slow+0x8c");
	/* Data symbols do not count: 0x250 is still inside nf_hook_slow's range. */
	cr_assert_str_eq(dt_ksym(ks, 0xffffffff81000250ull, buf, sizeof(buf)),
			 "nf_hook_slow+0x150");
	cr_assert_str_eq(dt_ksym(ks, 0xffffffff81000300ull, buf, sizeof(buf)), "ip_rcv_core+0x0");
	cr_assert_str_eq(dt_ksym(ks, 0x1000, buf, sizeof(buf)), "0x1000");
	dt_ksyms_free(ks);
	/* Without symbols every address is printed as such. */
	cr_assert_str_eq(dt_ksym(NULL, 0xabc, buf, sizeof(buf)), "0xabc");
}
