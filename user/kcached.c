/* kcached: the kcache daemon. Parses the configuration, starts the server, runs until
 * SIGTERM/SIGINT and turns errors into the exit status (0 ok, 1 runtime error, 2 bad config). */
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/log.h"
#include "netpol/policy.h"
#include "server.h"

int main(int argc, char **argv)
{
	struct kc_config cfg;
	struct kc_server *srv;
	char err[512];
	int rc;

	signal(SIGPIPE, SIG_IGN);
	/* --check-config: parse and validate, like `nginx -t`, then exit. */
	bool check_only = false;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--check-config")) {
			check_only = true;
			memmove(&argv[i], &argv[i + 1], (size_t)(argc - i) * sizeof(*argv));
			argc--;
			break;
		}
	}
	kc_config_defaults(&cfg);
	rc = kc_config_parse_args(&cfg, argc, argv, err, sizeof(err));
	if (rc > 0)
		return 0;
	if (rc < 0) {
		fprintf(stderr, "kcached: %s\n", err);
		return 2;
	}
	/* The network policy file is configuration too: a bad one is refused before anything
	 * starts, with its file:line. */
	if (cfg.xdp_mode != KC_XDP_OFF) {
		struct kc_pol_opts po = {.file = cfg.net_policy,
					 .port = (uint16_t)cfg.port,
					 .allow = cfg.allow,
					 .max_rules = cfg.net_policy_max_rules};

		if (kc_pol_check(&po, err, sizeof(err))) {
			fprintf(stderr, "kcached: %s\n", err);
			return 2;
		}
	}
	/* Listeners nothing protects are refused, unless the operator said so. */
	rc = kc_config_check_exposure(&cfg, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "kcached: %s\n", err);
		return 2;
	}
	if (check_only) {
		printf("kcached: configuration OK\n");
		return 0;
	}
	kc_log_set_level(cfg.log_level);
	kc_log_hook_libbpf();
	if (cfg.insecure_listen)
		log_warn("insecure-listen: memcached on %s and http on %s are not checked against "
			 "the network policy's coverage (xdp-mode %s%s%s)",
			 cfg.listen, cfg.http, kc_xdp_mode_name(cfg.xdp_mode),
			 cfg.iface[0] ? ", iface " : "", cfg.iface);
	srv = kc_server_start(&cfg, err, sizeof(err));
	if (!srv) {
		log_error("kcached: %s", err);
		return 1;
	}
	kc_server_run(srv);
	kc_server_free(srv);
	log_info("kcached: stopped");
	return 0;
}
