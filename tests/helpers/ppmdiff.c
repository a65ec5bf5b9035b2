// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Two screens compared pixel by pixel: the VM tier's screenshots, binary
 * PPM (P6) as QEMU's screendump writes them. A C helper, because the guest
 * runs under TCG, where a scripted loop over a million pixels takes seconds.
 *
 *   ppmdiff A.ppm B.ppm [TOLERANCE]
 *
 * prints "WxH, P% of the pixels differ (N px), mean |d| M" and exits 0 when
 * both have one size and at most TOLERANCE (a fraction, default 0.001) of
 * the pixels differ by more than 16 in some channel; 1 when they differ
 * more, 2 when a file cannot be read.
 */
#include <stdio.h>
#include <stdlib.h>

struct ppm {
	int w, h;
	unsigned char *px;
};

/* the next header field, past whitespace and comments */
static int field(FILE *f, int *v)
{
	int c;

	while ((c = getc(f)) != EOF) {
		if (c == '#')
			while ((c = getc(f)) != EOF && c != '\n')
				;
		else if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
			break;
	}
	ungetc(c, f);
	return fscanf(f, "%d", v) == 1 ? 0 : -1;
}

static int load(const char *path, struct ppm *p)
{
	FILE *f = fopen(path, "rbe");
	int maxval;
	size_t n;

	if (!f)
		return -1;
	if (getc(f) != 'P' || getc(f) != '6' || field(f, &p->w) || field(f, &p->h) ||
	    field(f, &maxval) || maxval != 255 || p->w <= 0 || p->h <= 0 || p->w > 16384 ||
	    p->h > 16384) {
		fclose(f);
		return -1;
	}
	getc(f); /* the one whitespace byte before the pixels */
	n = (size_t)p->w * p->h * 3;
	p->px = malloc(n);
	if (!p->px || fread(p->px, 1, n, f) != n) {
		fclose(f);
		return -1;
	}
	fclose(f);
	return 0;
}

int main(int argc, char **argv)
{
	struct ppm a = { 0 }, b = { 0 };
	double tol = argc > 3 ? atof(argv[3]) : 0.001, frac;
	unsigned long long total = 0, differ = 0, n;

	if (argc < 3 || argc > 4) {
		fprintf(stderr, "usage: ppmdiff A.ppm B.ppm [TOLERANCE]\n");
		return 2;
	}
	if (load(argv[1], &a) || load(argv[2], &b)) {
		fprintf(stderr, "ppmdiff: %s is not a readable 8-bit P6 picture\n",
			a.px ? argv[2] : argv[1]);
		return 2;
	}
	if (a.w != b.w || a.h != b.h) {
		printf("%dx%d vs %dx%d\n", a.w, a.h, b.w, b.h);
		return 1;
	}
	n = (unsigned long long)a.w * a.h;
	for (unsigned long long i = 0; i < n * 3; i += 3) {
		int d = 0;

		for (int c = 0; c < 3; c++) {
			int e = abs(a.px[i + c] - b.px[i + c]);

			d = e > d ? e : d;
		}
		total += d;
		differ += d > 16;
	}
	frac = (double)differ / n;
	printf("%dx%d, %.3f%% of the pixels differ (%llu px), mean |d| %.3f\n", a.w, a.h,
	       frac * 100, differ, (double)total / n);
	free(a.px);
	free(b.px);
	return frac <= tol ? 0 : 1;
}
