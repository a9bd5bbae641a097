/*
 * floor-udp-echo: the leanest UDP echo server this benchmark can think of,
 * the "floor" that netcrab and the Go UDP echo are measured against in
 * bench/udp-compare.sh (server "floor", and "floor-gso" for -gso). Written
 * for that benchmark only.
 *
 * One thread, one socket, blocking, two system calls per batch:
 *   recvmmsg(2) of up to 64 datagrams with MSG_WAITFORONE (block for the
 *   first, then take whatever else is queued), then one sendmmsg(2) that
 *   sends every reply back to its sender from the same buffers. No
 *   allocation after start-up: 64 static 64 KiB buffers (the largest UDP
 *   payload, so nothing is truncated).
 *
 * With -gso, replies to the same peer in one batch go out as ONE message
 * with a UDP_SEGMENT control message (UDP generic segmentation offload:
 * the kernel builds one big skb and splits it into datagrams). Segments
 * must be equal in size except the last, so a group is the batch's
 * datagrams from one peer of the first one's length, up to the first one
 * of another length (which starts the next group): the order of one
 * peer's replies is kept. Does that move the floor on loopback? That is
 * what the benchmark asks.
 *
 * Same command line as the Go peer (bench/peers/udp-echo-go):
 *   floor-udp-echo [-addr 127.0.0.1:0] [-port-file PATH] [-gso]
 * The address is IPv4 HOST:PORT. Once bound it writes "PORT\n" to PATH (a
 * temporary file renamed) and prints "listening on HOST:PORT" to stderr.
 * Send errors (a peer gone: ECONNREFUSED) skip that one reply.
 *
 * Build: gcc -O2 -o floor-udp-echo floor-udp-echo.c (bench/peers/build.sh).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif

#define BATCH 64
#define BUF_SIZE 65536

static char bufs[BATCH][BUF_SIZE];
static struct iovec iovs[BATCH];
static struct sockaddr_in peers[BATCH];
static struct mmsghdr in[BATCH];

/* -gso: the outgoing messages, each over several of the batch's buffers. */
static struct mmsghdr out[BATCH];
static struct iovec out_iovs[BATCH];
static char out_cmsg[BATCH][CMSG_SPACE(sizeof(unsigned short))];

static void die(const char *what)
{
	fprintf(stderr, "floor-udp-echo: %s: %s\n", what, strerror(errno));
	exit(1);
}

/* Sends msgs[0..n) with as few sendmmsg calls as the kernel allows: one,
 * unless a message fails (then that one is skipped). */
static void send_all(int fd, struct mmsghdr *msgs, int n)
{
	int sent = 0;
	while (sent < n) {
		int r = sendmmsg(fd, msgs + sent, n - sent, 0);
		if (r > 0) {
			sent += r;
		} else if (r < 0 && errno == EINTR) {
			continue;
		} else {
			sent++; /* that reply's error (a peer gone): skip it */
		}
	}
}

static int same_peer(const struct sockaddr_in *a, const struct sockaddr_in *b)
{
	return a->sin_port == b->sin_port && a->sin_addr.s_addr == b->sin_addr.s_addr;
}

/* Builds the -gso messages for a batch of n received datagrams into out[];
 * returns how many. */
static int gso_group(int n)
{
	unsigned char done[BATCH] = {0};
	int m = 0, k = 0; /* messages, iovecs used */
	for (int i = 0; i < n; i++) {
		if (done[i])
			continue;
		unsigned len = in[i].msg_len;
		struct iovec *first = &out_iovs[k];
		int segs = 0;
		for (int j = i; j < n; j++) {
			if (done[j] || !same_peer(&peers[i], &peers[j]))
				continue;
			if (in[j].msg_len != len || len == 0 || (segs + 1) * len > 65507)
				break; /* another length (or full): it starts the next group */
			done[j] = 1;
			out_iovs[k].iov_base = bufs[j];
			out_iovs[k].iov_len = len;
			k++;
			segs++;
		}
		if (segs == 0) { /* an empty datagram: send it on its own */
			done[i] = 1;
			out_iovs[k].iov_base = bufs[i];
			out_iovs[k].iov_len = 0;
			k++;
			segs = 1;
		}
		struct msghdr *h = &out[m].msg_hdr;
		memset(h, 0, sizeof *h);
		h->msg_name = &peers[i];
		h->msg_namelen = sizeof peers[i];
		h->msg_iov = first;
		h->msg_iovlen = segs;
		if (segs > 1) {
			h->msg_control = out_cmsg[m];
			h->msg_controllen = sizeof out_cmsg[m];
			struct cmsghdr *c = CMSG_FIRSTHDR(h);
			c->cmsg_level = SOL_UDP;
			c->cmsg_type = UDP_SEGMENT;
			c->cmsg_len = CMSG_LEN(sizeof(unsigned short));
			unsigned short seg = len;
			memcpy(CMSG_DATA(c), &seg, sizeof seg);
		}
		m++;
	}
	return m;
}

static void usage(void)
{
	fprintf(stderr, "usage: floor-udp-echo [-addr 127.0.0.1:0] [-port-file PATH] [-gso]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *addr = "127.0.0.1:0", *port_file = NULL;
	int gso = 0;
	for (int i = 1; i < argc; i++) {
		const char *flag = argv[i];
		while (*flag == '-')
			flag++;
		if (!strcmp(flag, "gso")) {
			gso = 1;
			continue;
		}
		if (i + 1 >= argc)
			usage();
		const char *value = argv[++i];
		if (!strcmp(flag, "addr"))
			addr = value;
		else if (!strcmp(flag, "port-file"))
			port_file = value;
		else
			usage();
	}

	char host[256];
	const char *colon = strrchr(addr, ':');
	if (!colon || (size_t)(colon - addr) >= sizeof host)
		usage();
	memcpy(host, addr, colon - addr);
	host[colon - addr] = 0;
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(atoi(colon + 1))};
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
		usage();

	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die("socket");
	if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
		die("bind");
	socklen_t salen = sizeof sa;
	if (getsockname(fd, (struct sockaddr *)&sa, &salen) < 0)
		die("getsockname");
	if (port_file) {
		char tmp[4096];
		snprintf(tmp, sizeof tmp, "%s.tmp-%d", port_file, (int)getpid());
		FILE *f = fopen(tmp, "w");
		if (!f || fprintf(f, "%d\n", ntohs(sa.sin_port)) < 0 || fclose(f) != 0 ||
		    rename(tmp, port_file) != 0)
			die("port file");
	}
	fprintf(stderr, "listening on %s:%d\n", host, ntohs(sa.sin_port));

	for (int i = 0; i < BATCH; i++) {
		in[i].msg_hdr.msg_name = &peers[i];
		in[i].msg_hdr.msg_iov = &iovs[i];
		in[i].msg_hdr.msg_iovlen = 1;
	}
	for (;;) {
		for (int i = 0; i < BATCH; i++) { /* recvmmsg overwrites these */
			iovs[i].iov_base = bufs[i];
			iovs[i].iov_len = BUF_SIZE;
			in[i].msg_hdr.msg_namelen = sizeof peers[i];
		}
		int n = recvmmsg(fd, in, BATCH, MSG_WAITFORONE, NULL);
		if (n < 0) {
			if (errno != EINTR)
				fprintf(stderr, "floor-udp-echo: recvmmsg: %s\n", strerror(errno));
			continue;
		}
		if (gso) {
			send_all(fd, out, gso_group(n));
		} else {
			/* The same headers send the replies: each iovec shrunk to
			 * the datagram's length, msg_name already the sender. */
			for (int i = 0; i < n; i++)
				iovs[i].iov_len = in[i].msg_len;
			send_all(fd, in, n);
		}
	}
}
