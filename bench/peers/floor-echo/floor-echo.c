/*
 * floor-echo: the leanest TCP echo server this benchmark can think of, the
 * "floor" that netcrab, tokio and Go are measured against in
 * bench/compare.sh (SERVERS=floor). Written for that benchmark only.
 *
 * Per request it does the minimum an epoll server can do:
 *   - one thread per core (-threads, default: the online CPUs), each with
 *     its own SO_REUSEPORT listener on the same port and its own epoll
 *     instance, so the threads share nothing (no locks, no wake-ups of
 *     each other; the kernel spreads the connections over the listeners);
 *   - non-blocking sockets, LEVEL-triggered: an echo needs exactly one
 *     read(2) and one write(2) per request (edge-triggered would need an
 *     extra read to see EAGAIN before the next epoll_wait);
 *   - epoll_wait(2) with a 1,024-entry event array, so one wait serves
 *     every connection that became readable since the last one;
 *   - no allocation after start-up: one static 64 KiB buffer per thread
 *     (a request is read and written back before the next one is read).
 * A short write (the peer's receive window full: never in a closed-loop
 * echo of small messages) is finished with a blocking poll(2) + write(2)
 * on that connection; correct, and it keeps the server stateless.
 *
 * Same command line as the Go and tokio peers, so compare.sh drives them
 * all identically:
 *   floor-echo [-addr 127.0.0.1:0] [-port-file PATH] [-mode echo|discard] [-threads N]
 * The address is IPv4 HOST:PORT. Once listening it writes "PORT\n" to PATH
 * (a temporary file renamed, so a reader never sees a partial number) and
 * prints "listening on HOST:PORT" to stderr.
 *
 * Build: gcc -O2 -pthread -o floor-echo floor-echo.c (bench/peers/build.sh).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_THREADS 64
#define MAX_EVENTS 1024
#define BUF_SIZE (64 * 1024)

static int discard_mode;

struct worker {
	int listener;
	pthread_t thread;
	char buf[BUF_SIZE]; /* this thread's only buffer */
};
static struct worker workers[MAX_THREADS];

static void die(const char *what)
{
	fprintf(stderr, "floor-echo: %s: %s\n", what, strerror(errno));
	exit(1);
}

/* Writes all of buf[0..n) to the non-blocking fd; blocks in poll(2) on the
 * rare short write. Returns -1 when the connection is broken. */
static int write_all(int fd, const char *buf, ssize_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, buf, n);
		if (w > 0) {
			buf += w;
			n -= w;
		} else if (w < 0 && errno == EAGAIN) {
			struct pollfd p = {.fd = fd, .events = POLLOUT};
			if (poll(&p, 1, -1) < 0 && errno != EINTR)
				return -1;
		} else if (w < 0 && errno == EINTR) {
			continue;
		} else {
			return -1;
		}
	}
	return 0;
}

/* Accepts every pending connection (the listener is non-blocking). */
static void accept_all(int ep, int listener)
{
	for (;;) {
		int fd = accept4(listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN)
				fprintf(stderr, "floor-echo: accept: %s\n", strerror(errno));
			return; /* EAGAIN, or EMFILE & co: try again on the next wake-up */
		}
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
		if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
			fprintf(stderr, "floor-echo: epoll_ctl: %s\n", strerror(errno));
			close(fd);
		}
	}
}

static void *run(void *arg)
{
	struct worker *w = arg;
	struct epoll_event events[MAX_EVENTS];
	int ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		die("epoll_create1");
	struct epoll_event lev = {.events = EPOLLIN, .data.fd = w->listener};
	if (epoll_ctl(ep, EPOLL_CTL_ADD, w->listener, &lev) < 0)
		die("epoll_ctl listener");
	for (;;) {
		int n = epoll_wait(ep, events, MAX_EVENTS, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			die("epoll_wait");
		}
		for (int i = 0; i < n; i++) {
			int fd = events[i].data.fd;
			if (fd == w->listener) {
				accept_all(ep, fd);
				continue;
			}
			/* One read per readiness: level-triggered, so anything left
			 * in the socket wakes the next epoll_wait. */
			ssize_t r = read(fd, w->buf, BUF_SIZE);
			if (r > 0) {
				if (discard_mode || write_all(fd, w->buf, r) == 0)
					continue;
			} else if (r < 0 && (errno == EAGAIN || errno == EINTR)) {
				continue;
			}
			close(fd); /* EOF or error; close also leaves the epoll set */
		}
	}
	return NULL;
}

/* A listening SO_REUSEPORT socket bound to addr. */
static int listen_on(const struct sockaddr_in *addr)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die("socket");
	int one = 1;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0)
		die("setsockopt");
	if (bind(fd, (const struct sockaddr *)addr, sizeof *addr) < 0)
		die("bind");
	if (listen(fd, 4096) < 0)
		die("listen");
	return fd;
}

static void write_port_file(const char *path, int port)
{
	char tmp[4096];
	snprintf(tmp, sizeof tmp, "%s.tmp-%d", path, (int)getpid());
	FILE *f = fopen(tmp, "w");
	if (!f || fprintf(f, "%d\n", port) < 0 || fclose(f) != 0 || rename(tmp, path) != 0)
		die("port file");
}

static void usage(void)
{
	fprintf(stderr, "usage: floor-echo [-addr 127.0.0.1:0] [-port-file PATH] [-mode echo|discard] [-threads N]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *addr = "127.0.0.1:0", *port_file = NULL;
	long threads = sysconf(_SC_NPROCESSORS_ONLN);
	for (int i = 1; i < argc; i++) {
		const char *flag = argv[i];
		while (*flag == '-')
			flag++;
		if (i + 1 >= argc)
			usage();
		const char *value = argv[++i];
		if (!strcmp(flag, "addr"))
			addr = value;
		else if (!strcmp(flag, "port-file"))
			port_file = value;
		else if (!strcmp(flag, "mode") && !strcmp(value, "echo"))
			discard_mode = 0;
		else if (!strcmp(flag, "mode") && !strcmp(value, "discard"))
			discard_mode = 1;
		else if (!strcmp(flag, "threads"))
			threads = atol(value);
		else
			usage();
	}
	if (threads < 1 || threads > MAX_THREADS)
		usage();

	char host[256];
	const char *colon = strrchr(addr, ':');
	if (!colon || (size_t)(colon - addr) >= sizeof host)
		usage();
	memcpy(host, addr, colon - addr);
	host[colon - addr] = 0;
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(atoi(colon + 1))};
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
		usage();

	/* The first listener picks the port (when 0); the others join it. */
	for (long t = 0; t < threads; t++) {
		workers[t].listener = listen_on(&sa);
		if (t == 0) {
			socklen_t len = sizeof sa;
			if (getsockname(workers[0].listener, (struct sockaddr *)&sa, &len) < 0)
				die("getsockname");
		}
	}
	if (port_file)
		write_port_file(port_file, ntohs(sa.sin_port));
	fprintf(stderr, "listening on %s:%d\n", host, ntohs(sa.sin_port));

	for (long t = 1; t < threads; t++)
		if (pthread_create(&workers[t].thread, NULL, run, &workers[t]) != 0)
			die("pthread_create");
	run(&workers[0]);
	return 0;
}
