/* refloop: the reference implementations, warm, for bench/kdf.sh.
 *
 * It calls the same C code as the reference CLIs (libargon2.so.1 from
 * Debian's libargon2-1, which the argon2 CLI is built from, and OpenSSL's
 * libcrypto.so.3 behind `openssl kdf`) N times in one process and prints
 * the median seconds of one call. The prototypes are declared here so that
 * only the runtime libraries are needed, not their -dev packages.
 *
 *   refloop argon2id T M_KIB P N     (password "password", salt "saltsaltsaltsalt")
 *   refloop pbkdf2-sha256 ITER N
 *
 * Warm means the memory too: libargon2 mallocs its M_KIB buffer and frees
 * it on every call, and glibc serves an allocation that large with mmap and
 * gives it back with munmap, so each call would fault every page in again
 * (16,384 faults for 64 MiB) while Go's x/crypto reuses its heap. mallopt
 * below makes glibc take it from the heap and keep it, so the loop's calls
 * after the first reuse the pages (compare the minor faults of
 * `/usr/bin/time -f %R refloop argon2id 2 65536 1 8` with and without).
 */
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int argon2id_hash_raw(const uint32_t t_cost, const uint32_t m_cost, const uint32_t parallelism,
                      const void *pwd, const size_t pwdlen, const void *salt, const size_t saltlen,
                      void *hash, const size_t hashlen);
typedef struct evp_md_st EVP_MD;
const EVP_MD *EVP_sha256(void);
int PKCS5_PBKDF2_HMAC(const char *pass, int passlen, const unsigned char *salt, int saltlen, int iter,
                      const EVP_MD *digest, int keylen, unsigned char *out);

static double now(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int cmp(const void *a, const void *b) {
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

int main(int argc, char **argv) {
	static const char pw[] = "password", salt[] = "saltsaltsaltsalt";
	unsigned char out[32];
	int argon = argc == 6 && strcmp(argv[1], "argon2id") == 0;
	int pbkdf2 = argc == 4 && strcmp(argv[1], "pbkdf2-sha256") == 0;
	if (!argon && !pbkdf2) {
		fprintf(stderr, "usage: refloop argon2id T M_KIB P N | refloop pbkdf2-sha256 ITER N\n");
		return 2;
	}
	/* No mmap for large blocks, and no trimming of the heap's top. */
	if (!mallopt(M_MMAP_MAX, 0) || !mallopt(M_TRIM_THRESHOLD, 1 << 30)) {
		fprintf(stderr, "refloop: mallopt failed\n");
		return 1;
	}
	int n = atoi(argv[argc - 1]);
	if (n < 1 || n > 1000) return 2;
	double *d = calloc(n, sizeof *d);
	for (int i = 0; i < n; i++) {
		double t0 = now();
		int rc = argon ? argon2id_hash_raw(atoi(argv[2]), atoi(argv[3]), atoi(argv[4]), pw, 8, salt, 16, out, 32)
		               : !PKCS5_PBKDF2_HMAC(pw, 8, (const unsigned char *)salt, 16, atoi(argv[2]), EVP_sha256(), 32, out);
		d[i] = now() - t0;
		if (rc != 0) {
			fprintf(stderr, "refloop: hash failed (%d)\n", rc);
			return 1;
		}
	}
	qsort(d, n, sizeof *d, cmp);
	printf("%.6f", n % 2 ? d[n / 2] : (d[n / 2 - 1] + d[n / 2]) / 2);
	for (int i = 0; i < 32; i++) printf(i ? "%02x" : " %02x", out[i]);
	printf("\n");
	return 0;
}
