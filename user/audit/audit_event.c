/* audit_event.c: the process and cgroup tables and the JSON encoder. See audit_event.h. */
#include "audit/audit_event.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "audit/audit_policy.h"
#include "audit/audit_sink.h"

#define WAYS 4

struct image {
	uint64_t id; /* 0: empty */
	uint64_t used;
	uint16_t len;
	uint8_t trunc;
	char argv[KC_AUDIT_ARGV_MAX];
};

struct cgent {
	uint64_t id;
	uint64_t used;
	char path[KC_AUDIT_STR_MAX];
};

struct kc_audit_enrich {
	struct image *images;
	unsigned image_sets;
	struct cgent *cgs;
	unsigned cg_sets;
	uint64_t tick;
	char cgroup_root[256];
	char node[128];
	char boot[9];
	time_t last_scan;
	struct kc_audit_enrich_stats st;
};

struct kc_audit_enrich *kc_audit_enrich_new(unsigned images, unsigned cgroups,
					    const char *cgroup_root, const char *node)
{
	struct kc_audit_enrich *e = calloc(1, sizeof(*e));
	char boot[64] = "";
	FILE *f;

	if (!e)
		return NULL;
	e->image_sets = images < WAYS ? 1 : (images + WAYS - 1) / WAYS;
	e->cg_sets = cgroups < WAYS ? 1 : (cgroups + WAYS - 1) / WAYS;
	e->images = calloc((size_t)e->image_sets * WAYS, sizeof(*e->images));
	e->cgs = calloc((size_t)e->cg_sets * WAYS, sizeof(*e->cgs));
	if (!e->images || !e->cgs) {
		kc_audit_enrich_free(e);
		errno = ENOMEM;
		return NULL;
	}
	snprintf(e->cgroup_root, sizeof(e->cgroup_root), "%s", cgroup_root);
	snprintf(e->node, sizeof(e->node), "%s", node);
	f = fopen("/proc/sys/kernel/random/boot_id", "r");
	if (f) {
		if (!fgets(boot, sizeof(boot), f))
			boot[0] = 0;
		fclose(f);
	}
	snprintf(e->boot, sizeof(e->boot), "%.8s", boot[0] ? boot : "00000000");
	return e;
}

void kc_audit_enrich_free(struct kc_audit_enrich *e)
{
	if (!e)
		return;
	free(e->images);
	free(e->cgs);
	free(e);
}

void kc_audit_enrich_stats(const struct kc_audit_enrich *e, struct kc_audit_enrich_stats *out)
{
	*out = e->st;
}

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	return x;
}

/* The way holding id in its set, or the one to replace (eviction counted by the caller). */
#define LOOKUP(tab, sets, id, hit)                                                                 \
	({                                                                                         \
		__typeof__(&(tab)[0]) set_ = &(tab)[(mix(id) % (sets)) * WAYS], victim_ = set_;    \
		hit = false;                                                                       \
		for (int w_ = 0; w_ < WAYS; w_++) {                                                \
			if (set_[w_].id == (id)) {                                                 \
				victim_ = &set_[w_];                                               \
				hit = true;                                                        \
				break;                                                             \
			}                                                                          \
			if (set_[w_].used < victim_->used)                                         \
				victim_ = &set_[w_];                                               \
		}                                                                                  \
		victim_;                                                                           \
	})

static struct image *image_put(struct kc_audit_enrich *e, uint64_t id)
{
	bool hit;
	struct image *im = LOOKUP(e->images, e->image_sets, id, hit);

	if (!hit && im->id)
		e->st.image_evictions++;
	im->id = id;
	im->used = ++e->tick;
	return im;
}

void kc_audit_enrich_exec(struct kc_audit_enrich *e, const struct kc_audit_exec *r)
{
	struct image *im = image_put(e, r->exec_id);

	im->len = r->argv_len > KC_AUDIT_ARGV_MAX ? KC_AUDIT_ARGV_MAX : r->argv_len;
	im->trunc = r->flags & 1;
	memcpy(im->argv, r->argv, im->len);
}

static const struct image *image_get(struct kc_audit_enrich *e, uint64_t id, uint32_t pid)
{
	bool hit;
	struct image *im = LOOKUP(e->images, e->image_sets, id, hit);
	char path[64];
	ssize_t n;
	int fd;

	if (hit) {
		im->used = ++e->tick;
		return im;
	}
	e->st.image_misses++;
	/* Not seen exec (it predates us, or its record was lost): ask /proc while it lives. */
	snprintf(path, sizeof(path), "/proc/%u/cmdline", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	im = image_put(e, id);
	n = read(fd, im->argv, sizeof(im->argv));
	close(fd);
	im->len = n > 0 ? (uint16_t)n : 0;
	im->trunc = n == (ssize_t)sizeof(im->argv);
	return im;
}

/* Finds the cgroup id's directory: /proc/<pid>/cgroup when it agrees, else a walk. */
static uint64_t want_id;
static char found_path[KC_AUDIT_STR_MAX];
static size_t root_len;

static int scan_cb(const char *fpath, const struct stat *sb, int type, struct FTW *ftw)
{
	if (type != FTW_D || ftw->level > 16)
		return 0;
	if ((uint64_t)sb->st_ino == want_id) {
		snprintf(found_path, sizeof(found_path), "%s",
			 fpath[root_len] ? fpath + root_len : "/");
		return 1;
	}
	return 0;
}

static const char *cgroup_path(struct kc_audit_enrich *e, uint64_t id, uint32_t pid)
{
	bool hit;
	struct cgent *c = LOOKUP(e->cgs, e->cg_sets, id, hit);
	char buf[240], full[600];
	struct stat st;
	FILE *f;
	bool ok = false;

	if (hit) {
		c->used = ++e->tick;
		return c->path;
	}
	e->st.cgroup_misses++;
	snprintf(buf, sizeof(buf), "/proc/%u/cgroup", pid);
	f = fopen(buf, "r");
	if (f) {
		while (fgets(buf, sizeof(buf), f)) {
			if (strncmp(buf, "0::", 3))
				continue;
			buf[strcspn(buf, "\n")] = 0;
			snprintf(full, sizeof(full), "%s%s", e->cgroup_root, buf + 3);
			if (!stat(full, &st) && (uint64_t)st.st_ino == id) {
				snprintf(found_path, sizeof(found_path), "%.236s", buf + 3);
				ok = true;
			}
			break;
		}
		fclose(f);
	}
	if (!ok && time(NULL) != e->last_scan) {
		e->last_scan = time(NULL);
		want_id = id;
		root_len = strlen(e->cgroup_root);
		ok = nftw(e->cgroup_root, scan_cb, 16, FTW_PHYS | FTW_MOUNT) == 1;
	}
	if (!ok)
		return NULL;
	if (c->id)
		e->st.cgroup_evictions++;
	c->id = id;
	c->used = ++e->tick;
	snprintf(c->path, sizeof(c->path), "%s", found_path);
	return c->path;
}

int kc_audit_container_id(const char *path, char id[65], const char **runtime)
{
	const char *p = path, *best = NULL;

	/* The last run of exactly 64 hex digits. */
	while (*p) {
		size_t n = strspn(p, "0123456789abcdef");

		if (n == 64 && (p == path || !strchr("0123456789abcdef", p[-1])))
			best = p;
		p += n ? n : 1;
	}
	if (!best)
		return 0;
	memcpy(id, best, 64);
	id[64] = 0;
	if (strstr(path, "crio"))
		*runtime = "cri-o";
	else if (strstr(path, "containerd"))
		*runtime = "containerd";
	else if (strstr(path, "libpod"))
		*runtime = "podman";
	else if (strstr(path, "docker"))
		*runtime = "docker";
	else if (strstr(path, "kubepods"))
		*runtime = "containerd"; /* cgroupfs driver: kubepods/<qos>/pod<uid>/<id> */
	else
		*runtime = "unknown";
	return 1;
}

void kc_audit_exec_id(const struct kc_audit_enrich *e, char *out, size_t len, uint64_t exec_id,
		      uint32_t pid)
{
	snprintf(out, len, "%s:%s:%llu:%u", e->node, e->boot, (unsigned long long)exec_id, pid);
}

static int json_str_or_null(struct kc_buf *b, const char *s)
{
	return s ? kc_json_str(b, s, KC_AUDIT_STR_MAX) : kc_buf_puts(b, "null");
}

/* The syscall's arguments by name, per hook. */
static int encode_args(struct kc_buf *b, const struct kc_audit_event *ev)
{
	const __u64 *a = ev->args;
	/* A string the kernel could not read is null, never whatever the buffer held. */
	const char *s0 = ev->xflags & KC_EVX_STR0_FAULT ? NULL : ev->str[0], *s1 = ev->str[1];
	int rc = 0;

#define NUM(name, v) rc |= kc_buf_printf(b, ",\"" name "\":%lld", (long long)(v))
#define INT(name, v) rc |= kc_buf_printf(b, ",\"" name "\":%d", (int)(v))
#define HEX(name, v) rc |= kc_buf_printf(b, ",\"" name "\":\"0x%llx\"", (unsigned long long)(v))
#define STR(name, s) (rc |= kc_buf_puts(b, ",\"" name "\":"), rc |= json_str_or_null(b, s))
	rc |= kc_buf_puts(b, "{\"_\":0");
	switch (ev->hook) {
	case KC_HOOK_EXECVE:
		STR("filename", s0);
		break;
	case KC_HOOK_EXECVEAT:
		INT("dirfd", a[0]), STR("filename", s0), HEX("flags", a[4]);
		break;
	case KC_HOOK_OPENAT:
		INT("dirfd", a[0]), STR("path", s0), HEX("flags", a[2]),
		    rc |=
		    kc_buf_printf(b, ",\"mode\":\"0%llo\"", (unsigned long long)(a[3] & 07777));
		break;
	case KC_HOOK_OPENAT2: {
		uint64_t how[3];

		memcpy(how, ev->aux, sizeof(how));
		INT("dirfd", a[0]), STR("path", s0), HEX("flags", how[0]);
		rc |= kc_buf_printf(b, ",\"mode\":\"0%llo\"", (unsigned long long)(how[1] & 07777));
		HEX("resolve", how[2]);
		break;
	}
	case KC_HOOK_CONNECT:
	case KC_HOOK_BIND: {
		uint16_t fam;
		char addr[INET6_ADDRSTRLEN] = "";

		memcpy(&fam, ev->aux, 2);
		INT("fd", a[0]), NUM("family", fam);
		if (fam == AF_INET) {
			inet_ntop(AF_INET, ev->aux + 4, addr, sizeof(addr));
			STR("address", addr);
			NUM("port", ntohs(*(const uint16_t *)(ev->aux + 2)));
		} else if (fam == AF_INET6) {
			inet_ntop(AF_INET6, ev->aux + 8, addr, sizeof(addr));
			STR("address", addr);
			NUM("port", ntohs(*(const uint16_t *)(ev->aux + 2)));
		} else if (fam == AF_UNIX) {
			char path[110];

			memcpy(path, ev->aux + 2, sizeof(path) - 2);
			path[sizeof(path) - 2] = 0;
			if (!path[0] && a[2] > 3) { /* abstract: "@name" */
				path[0] = '@';
			}
			STR("address", path);
		}
		break;
	}
	case KC_HOOK_PTRACE:
		NUM("request", a[0]), NUM("pid", (int)a[1]), HEX("addr", a[2]), HEX("data", a[3]);
		break;
	case KC_HOOK_SETUID:
		INT("uid", a[0]);
		break;
	case KC_HOOK_SETGID:
		INT("gid", a[0]);
		break;
	case KC_HOOK_SETREUID:
		INT("ruid", a[0]), INT("euid", a[1]);
		break;
	case KC_HOOK_SETRESUID:
		INT("ruid", a[0]), INT("euid", a[1]), INT("suid", a[2]);
		break;
	case KC_HOOK_SETRESGID:
		INT("rgid", a[0]), INT("egid", a[1]), INT("sgid", a[2]);
		break;
	case KC_HOOK_CAPSET: {
		uint32_t d[6];

		memcpy(d, ev->aux, sizeof(d));
		HEX("effective", (uint64_t)d[3] << 32 | d[0]);
		HEX("permitted", (uint64_t)d[4] << 32 | d[1]);
		HEX("inheritable", (uint64_t)d[5] << 32 | d[2]);
		break;
	}
	case KC_HOOK_INIT_MODULE:
		NUM("len", a[1]), STR("params", s0);
		break;
	case KC_HOOK_FINIT_MODULE:
		INT("fd", a[0]), STR("params", s0), HEX("flags", a[2]);
		break;
	case KC_HOOK_DELETE_MODULE:
		STR("name", s0), HEX("flags", a[1]);
		break;
	case KC_HOOK_MOUNT: {
		char fstype[33];

		memcpy(fstype, ev->aux, 32);
		fstype[32] = 0;
		STR("source", s1), STR("target", s0), STR("fstype", fstype), HEX("flags", a[3]);
		break;
	}
	case KC_HOOK_UMOUNT2:
		STR("target", s0), HEX("flags", a[1]);
		break;
	case KC_HOOK_UNLINKAT:
		INT("dirfd", a[0]), STR("path", s0), HEX("flags", a[2]);
		break;
	case KC_HOOK_RENAMEAT2:
		INT("olddirfd", a[0]), STR("oldpath", s0), INT("newdirfd", a[2]),
		    STR("newpath", s1);
		HEX("flags", a[4]);
		break;
	case KC_HOOK_FCHMODAT:
		INT("dirfd", a[0]), STR("path", s0);
		rc |= kc_buf_printf(b, ",\"mode\":\"0%llo\"", (unsigned long long)(a[2] & 07777));
		break;
	case KC_HOOK_FCHOWNAT:
		INT("dirfd", a[0]), STR("path", s0), INT("uid", a[2]), INT("gid", a[3]),
		    HEX("flags", a[4]);
		break;
	case KC_HOOK_BPF: {
		uint32_t type;
		char name[17];

		NUM("cmd", a[0]);
		if (a[0] == 5) { /* BPF_PROG_LOAD */
			memcpy(&type, ev->aux, 4);
			memcpy(name, ev->aux + 48, 16);
			name[16] = 0;
			NUM("prog_type", type), STR("prog_name", name);
		}
		break;
	}
	case KC_HOOK_MEMFD_CREATE:
		STR("name", s0), HEX("flags", a[1]);
		break;
	case KC_HOOK_OPEN_BY_HANDLE_AT: {
		uint32_t h[2];

		memcpy(h, ev->aux, sizeof(h));
		INT("mount_fd", a[0]), NUM("handle_bytes", h[0]), INT("handle_type", h[1]);
		HEX("flags", a[2]);
		/* The handle names no path; the file it opened does (null when nothing opened). */
		STR("path", ev->xflags & KC_EVX_FDPATH ? s1 : NULL);
		break;
	}
	case KC_HOOK_SETREGID:
		INT("rgid", a[0]), INT("egid", a[1]);
		break;
	case KC_HOOK_SETGROUPS: {
		uint32_t g[16];
		size_t n = a[0] < 16 ? (size_t)a[0] : 16;

		memcpy(g, ev->aux, sizeof(g));
		NUM("size", (int)a[0]);
		rc |= kc_buf_puts(b, ",\"groups\":[");
		for (size_t i = 0; i < n; i++)
			rc |= kc_buf_printf(b, "%s%u", i ? "," : "", g[i]);
		rc |= kc_buf_puts(b, "]");
		break;
	}
	case KC_HOOK_PROCESS_VM_READV:
	case KC_HOOK_PROCESS_VM_WRITEV:
		NUM("pid", (int)a[0]), NUM("liovcnt", a[2]), NUM("riovcnt", a[4]),
		    HEX("flags", a[5]);
		break;
	case KC_HOOK_IO_URING_SETUP: {
		uint32_t p[3];

		memcpy(p, ev->aux, sizeof(p));
		NUM("entries", (uint32_t)a[0]), HEX("flags", p[2]);
		break;
	}
	}
	rc |= kc_buf_puts(b, "}");
#undef NUM
#undef INT
#undef HEX
#undef STR
	return rc ? -ENOMEM : 0;
}

int kc_audit_encode_event(struct kc_audit_enrich *e, const struct kc_audit_event *ev,
			  const char *rule, int64_t mono_to_real, struct kc_buf *b)
{
	char t[40], id[200], pid_s[200], cid[65], comm[17];
	const char *sc = kc_audit_syscall_name(ev->nr, ev->flags & KC_EV_COMPAT), *cg, *runtime;
	/* An io_uring request has an opcode, not a syscall number; a call sent at enter (the
	 * in-flight table was full) or through io_uring has no result in the record. */
	bool uring = ev->xflags & KC_EVX_URING, no_ret = ev->xflags & (KC_EVX_EARLY | KC_EVX_URING);
	const struct image *im;
	size_t start = b->len, args_at;
	int rc = 0;

	kc_audit_fmt_time(t, sizeof(t), (uint64_t)((int64_t)ev->ktime + mono_to_real));
	rc |= kc_buf_printf(b, "\"time\":\"%s\",\"node\":", t);
	rc |= kc_json_str(b, e->node, sizeof(e->node));
	rc |= kc_buf_puts(b, ",\"type\":\"syscall\",\"rule\":");
	rc |= kc_json_str(b, rule, 64);
	rc |= kc_buf_printf(
	    b,
	    ",\"action\":\"%s\",\"syscall\":{\"name\":\"%s\",\"nr\":%u,"
	    "\"hook\":\"%s\",\"ia32\":%s,\"args\":",
	    kc_audit_action_name(ev->action),
	    uring ? (ev->hook == KC_HOOK_OPENAT2 ? "IORING_OP_OPENAT2" : "IORING_OP_OPENAT")
	    : sc  ? sc
		  : kc_audit_hook_name(ev->hook),
	    ev->nr, kc_audit_hook_name(ev->hook), ev->flags & KC_EV_COMPAT ? "true" : "false");
	args_at = b->len;
	rc |= encode_args(b, ev);
	/* encode_args opens with a placeholder member so each field can lead with a comma. */
	if (!rc && b->len >= args_at + 6 && !memcmp(b->data + args_at, "{\"_\":0", 6)) {
		memmove(b->data + args_at + 1, b->data + args_at + 6, b->len - args_at - 6);
		b->len -= 5;
		if (b->data[args_at + 1] == ',') {
			memmove(b->data + args_at + 1, b->data + args_at + 2, b->len - args_at - 2);
			b->len--;
		}
	}
	rc |= kc_buf_printf(b, ",\"truncated\":%s,",
			    ev->flags & (KC_EV_TRUNC0 | KC_EV_TRUNC1) ? "true" : "false");
	if (uring)
		rc |= kc_buf_puts(b, "\"io_uring\":true,");
	if (no_ret)
		rc |= kc_buf_printf(b, "\"ret\":null,\"error\":");
	else
		rc |= kc_buf_printf(b, "\"ret\":%lld,\"error\":", (long long)ev->ret);
	if (!no_ret && ev->ret < 0 && ev->ret > -4096)
		rc |= kc_buf_printf(b, "\"%s\"}",
				    strerrorname_np((int)-ev->ret) ? strerrorname_np((int)-ev->ret)
								   : "unknown");
	else
		rc |= kc_buf_puts(b, "null}");

	memcpy(comm, ev->comm, 16);
	comm[16] = 0;
	rc |= kc_buf_printf(b,
			    ",\"process\":{\"pid\":%u,\"tid\":%u,\"ppid\":%u,\"uid\":%u,"
			    "\"gid\":%u,\"euid\":%u,\"egid\":%u,\"comm\":",
			    ev->pid, ev->tid, ev->ppid, ev->uid, ev->gid, ev->euid, ev->egid);
	rc |= kc_json_str(b, comm, 16);
	rc |= kc_buf_puts(b, ",\"exe\":");
	rc |= kc_json_str(b, ev->exe, KC_AUDIT_STR_MAX);
	rc |= kc_buf_puts(b, ",\"args\":[");
	im = image_get(e, ev->image_id, ev->pid);
	if (im) {
		size_t off = 0;

		for (int first = 1; off < im->len; first = 0) {
			size_t n = strnlen(im->argv + off, im->len - off);

			if (!first)
				rc |= kc_buf_puts(b, ",");
			rc |= kc_json_str(b, im->argv + off, n);
			off += n + 1;
		}
	}
	rc |= kc_buf_printf(b, "],\"args_truncated\":%s,\"args_known\":%s",
			    im && im->trunc ? "true" : "false", im ? "true" : "false");
	kc_audit_exec_id(e, id, sizeof(id), ev->exec_id, ev->pid);
	kc_audit_exec_id(e, pid_s, sizeof(pid_s), ev->parent_exec_id, ev->ppid);
	rc |= kc_buf_puts(b, ",\"exec_id\":");
	rc |= kc_json_str(b, id, sizeof(id));
	rc |= kc_buf_puts(b, ",\"parent_exec_id\":");
	if (ev->parent_exec_id)
		rc |= kc_json_str(b, pid_s, sizeof(pid_s));
	else
		rc |= kc_buf_puts(b, "null");
	rc |= kc_buf_printf(
	    b,
	    ",\"started_before_audit\":%s,\"forked\":%s,\"memfd_exe\":%s,"
	    "\"cgroup_id\":%llu,\"cgroup\":",
	    ev->flags & KC_EV_LATE ? "true" : "false", ev->flags & KC_EV_FORKED ? "true" : "false",
	    ev->flags & KC_EV_MEMFD ? "true" : "false", (unsigned long long)ev->cgroup_id);
	cg = cgroup_path(e, ev->cgroup_id, ev->pid);
	if (cg)
		rc |= kc_json_str(b, cg, KC_AUDIT_STR_MAX);
	else
		rc |= kc_buf_puts(b, "null");
	rc |= kc_buf_puts(b, ",\"container\":");
	if (cg && kc_audit_container_id(cg, cid, &runtime))
		rc |= kc_buf_printf(b, "{\"id\":\"%s\",\"runtime\":\"%s\"}}", cid, runtime);
	else
		rc |= kc_buf_puts(b, "null}");
	if (rc) {
		b->len = start; /* roll the partial record back */
		return -ENOMEM;
	}
	return 0;
}
