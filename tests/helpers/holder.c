// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Stand-in GPU holders for the bpf tier and the benchmark. Each mode sets
 * up its holds, prints one line per hold ("PID KIND FD", FD "-" for a
 * mapping) and a line "ready", then waits to be killed. Every process it
 * makes dies with its parent (PR_SET_PDEATHSIG), so a failed test leaves
 * nothing behind.
 *
 *   holder open PATH           one fd
 *   holder fork PATH           one file shared by two processes
 *   holder scm PATH            the fd passed over SCM_RIGHTS; the sender exits
 *   holder mmap PATH           a MAP_PRIVATE mapping kept after close(fd)
 *   holder threads PATH N      one fd, N threads
 *   holder mntns PATH DIR      its own mount namespace, the node on a tmpfs at DIR
 *   holder churn PATH          children that open PATH and exit, without end
 *   holder dumb PATH           a DRM dumb buffer mapped, then the fd closed
 *   holder prime PATH          a DRM dumb buffer exported as a dma-buf and passed
 *                              over SCM_RIGHTS; the exporter closes all and exits
 *   HOLDER_COMM=NAME holder ...  any of these with NAME as its comm
 *   holder scene N FDS HOLD PATH [VMAS]
 *                              N processes with FDS fds each; HOLD of them hold PATH;
 *                              each with VMAS more mappings of its own binary, as
 *                              a desktop process has of its libraries
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <drm.h>
#include <drm_mode.h>

static void die(const char *what)
{
	fprintf(stderr, "holder: %s: %s\n", what, strerror(errno));
	exit(1);
}

static int open_or_die(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		die(path);
	return fd;
}

/* a child that lives as long as its parent, and no longer */
static pid_t child(void)
{
	pid_t parent = getpid(), pid = fork();

	if (pid < 0)
		die("fork");
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(0);
	}
	return pid;
}

static void ready(void)
{
	printf("ready\n");
	fflush(stdout);
}

static void *sleeper(void *arg)
{
	for (;;)
		pause();
	return NULL;
}

static void send_fd(int sock, int fd)
{
	char data = 'x', cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
	struct iovec iov = { &data, 1 };
	struct msghdr m = { .msg_iov = &iov,
			    .msg_iovlen = 1,
			    .msg_control = cbuf,
			    .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&m);

	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	if (sendmsg(sock, &m, 0) != 1)
		die("sendmsg");
}

static int recv_fd(int sock)
{
	char data, cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { &data, 1 };
	struct msghdr m = { .msg_iov = &iov,
			    .msg_iovlen = 1,
			    .msg_control = cbuf,
			    .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *c;
	int fd;

	if (recvmsg(sock, &m, MSG_CMSG_CLOEXEC) != 1 || !(c = CMSG_FIRSTHDR(&m)))
		die("recvmsg");
	memcpy(&fd, CMSG_DATA(c), sizeof(int));
	return fd;
}

/* a 64x64 32-bit dumb buffer on the DRM device at fd: its GEM handle */
static uint32_t dumb_create(int fd, uint64_t *size)
{
	struct drm_mode_create_dumb c = { .width = 64, .height = 64, .bpp = 32 };

	if (ioctl(fd, DRM_IOCTL_MODE_CREATE_DUMB, &c))
		die("DRM_IOCTL_MODE_CREATE_DUMB");
	*size = c.size;
	return c.handle;
}

static void dumb_map(const char *path)
{
	int fd = open(path, O_RDWR | O_CLOEXEC);
	struct drm_mode_map_dumb m = { 0 };
	uint64_t size;
	void *p;

	if (fd < 0)
		die(path);
	m.handle = dumb_create(fd, &size);
	if (ioctl(fd, DRM_IOCTL_MODE_MAP_DUMB, &m))
		die("DRM_IOCTL_MODE_MAP_DUMB");
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)m.offset);
	if (p == MAP_FAILED)
		die("mmap of the dumb buffer");
	memset(p, 0xa5, size);
	close(fd);
}

/* the exporter: a child that sends a dma-buf of a dumb buffer and exits */
static int prime_receive(const char *path)
{
	int sv[2], fd;
	pid_t exporter;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		die("socketpair");
	exporter = child();
	if (exporter == 0) {
		struct drm_prime_handle ph = { .flags = DRM_CLOEXEC | DRM_RDWR };
		int dev = open(path, O_RDWR | O_CLOEXEC);
		uint64_t size;

		if (dev < 0)
			die(path);
		ph.handle = dumb_create(dev, &size);
		if (ioctl(dev, DRM_IOCTL_PRIME_HANDLE_TO_FD, &ph))
			die("DRM_IOCTL_PRIME_HANDLE_TO_FD");
		close(dev);
		send_fd(sv[0], ph.fd);
		_exit(0);
	}
	fd = recv_fd(sv[1]);
	waitpid(exporter, NULL, 0); /* the device's only opener is gone */
	close(sv[0]);
	close(sv[1]);
	return fd;
}

/* the scene of the benchmark: ordinary fds, a few of them the device */
/*
 * n separate mappings of one page of the binary: the same offset each time,
 * so that no two of them are contiguous in the file and none merge
 */
static void map_pages(int n)
{
	int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		_exit(1);
	for (int i = 0; i < n; i++)
		if (mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 0) == MAP_FAILED)
			_exit(1);
	close(fd);
}

static void scene(int n, int fds, int hold, const char *path, int vmas)
{
	int pipefd[2];

	if (pipe(pipefd))
		die("pipe");
	for (int i = 0; i < n; i++) {
		pid_t pid = child();
		int p[2], f;

		if (pid)
			continue;
		close(pipefd[0]);
		if (pipe(p))
			_exit(1);
		/* fds 0-2, the pipes, then a mix like a desktop's: files, /dev/null, sockets */
		for (f = 6; f < fds - (i < hold); f++) {
			int fd = f % 4 == 0   ? open("/dev/null", O_RDONLY)
				 : f % 4 == 1 ? open("/etc/hostname", O_RDONLY)
				 : f % 4 == 2 ? socket(AF_UNIX, SOCK_STREAM, 0)
					      : dup(p[0]);
			if (fd < 0)
				_exit(1);
		}
		map_pages(vmas);
		if (i < hold)
			printf("%d fd %d\n", getpid(), open_or_die(path));
		fflush(stdout);
		if (write(pipefd[1], "x", 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	close(pipefd[1]);
	for (int i = 0; i < n; i++) {
		char c;

		if (read(pipefd[0], &c, 1) != 1)
			die("scene child");
	}
}

int main(int argc, char **argv)
{
	const char *mode = argc > 2 ? argv[1] : "", *path = argc > 2 ? argv[2] : "";
	int fd;

	setvbuf(stdout, NULL, _IOLBF, 0);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	/* a name of the test's choosing, hostile bytes and all (the kernel keeps 15) */
	if (getenv("HOLDER_COMM"))
		prctl(PR_SET_NAME, getenv("HOLDER_COMM"));
	if (!strcmp(mode, "open")) {
		printf("%d fd %d\n", getpid(), open_or_die(path));
	} else if (!strcmp(mode, "fork")) {
		fd = open_or_die(path);
		if (child() == 0) {
			printf("%d fd %d\n", getpid(), fd);
			for (;;)
				pause();
		}
		printf("%d fd %d\n", getpid(), fd);
		usleep(100 * 1000);
	} else if (!strcmp(mode, "scm")) {
		int sv[2];
		pid_t sender;

		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
			die("socketpair");
		sender = child();
		if (sender == 0) {
			send_fd(sv[0], open_or_die(path));
			_exit(0);
		}
		fd = recv_fd(sv[1]);
		waitpid(sender, NULL, 0); /* the only opener is gone */
		printf("%d fd %d\n", getpid(), fd);
	} else if (!strcmp(mode, "mmap")) {
		void *p;

		fd = open_or_die(path);
		p = mmap(NULL, 8192, PROT_READ, MAP_PRIVATE, fd, 0);
		if (p == MAP_FAILED)
			die("mmap");
		close(fd);
		printf("%d mmap -\n", getpid());
	} else if (!strcmp(mode, "dumb")) {
		dumb_map(path);
		printf("%d mmap -\n", getpid());
	} else if (!strcmp(mode, "prime")) {
		printf("%d dmabuf %d\n", getpid(), prime_receive(path));
	} else if (!strcmp(mode, "threads")) {
		int n = argc > 3 ? atoi(argv[3]) : 8;
		pthread_t t;

		fd = open_or_die(path);
		for (int i = 0; i < n; i++)
			if (pthread_create(&t, NULL, sleeper, NULL))
				die("pthread_create");
		printf("%d fd %d\n", getpid(), fd);
	} else if (!strcmp(mode, "mntns")) {
		/* a private /mnt-like tmpfs with its own node for the same device */
		const char *dir = argc > 3 ? argv[3] : "/mnt";
		char node[4096];
		struct stat st;

		if (stat(path, &st))
			die(path);
		if (unshare(CLONE_NEWNS) || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) ||
		    mount("tmpfs", dir, "tmpfs", 0, NULL))
			die("mount namespace");
		snprintf(node, sizeof(node), "%s/gpu-inside", dir);
		if (mknod(node, S_IFCHR | 0600, st.st_rdev))
			die("mknod");
		fd = open_or_die(node);
		printf("%d fd %d %s\n", getpid(), fd, node);
	} else if (!strcmp(mode, "churn")) {
		prctl(PR_SET_NAME, "va-churn");
		ready();
		for (unsigned int i = 0;; i++) {
			pid_t pid = fork();

			if (pid == 0) {
				fd = open_or_die(path);
				usleep(i % 7 * 1000);
				_exit(0);
			}
			if (pid > 0)
				waitpid(pid, NULL, 0);
		}
	} else if (!strcmp(mode, "scene") && argc > 5) {
		prctl(PR_SET_NAME, "va-scene");
		scene(atoi(argv[2]), atoi(argv[3]), atoi(argv[4]), argv[5],
		      argc > 6 ? atoi(argv[6]) : 0);
	} else {
		fprintf(stderr,
			"usage: holder open|fork|scm|mmap|dumb|prime|threads|mntns|churn PATH "
			"[ARG] | "
			"scene N FDS HOLD PATH [VMAS]\n");
		return 2;
	}
	ready();
	for (;;)
		pause();
}
