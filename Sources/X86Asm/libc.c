// The handful of C library symbols that LLVM and the Embedded Swift runtime call.
// Built with -ffreestanding -fno-builtin; the loops use string instructions so the
// compiler cannot turn them back into calls to themselves.

// Kernel image only: in a hosted build (`swift test` links X86Asm into test binaries)
// this file is empty; see arch.h, "Hosted builds".
#if !__STDC_HOSTED__
#include <stddef.h>
#include <stdint.h>
#include "arch.h"

// Eight bytes per iteration, then the tail byte by byte. Under TCG every iteration of a
// `rep` string instruction is emulated separately, so `rep movsq` moves data about eight
// times faster than `rep movsb` (a 64 MiB file crosses two copies in the guest); on
// hardware both are fast-string operations.
void *memcpy(void *dst, const void *src, size_t n) {
    void *d = dst;
    size_t words = n >> 3, tail = n & 7;
    __asm__ volatile("rep movsq" : "+D"(d), "+S"(src), "+c"(words) : : "memory");
    __asm__ volatile("rep movsb" : "+D"(d), "+S"(src), "+c"(tail) : : "memory");
    return dst;
}

void *memset(void *dst, int c, size_t n) {
    void *d = dst;
    size_t words = n >> 3, tail = n & 7;
    uint64_t pattern = (uint64_t)(unsigned char)c * 0x0101010101010101ULL;
    __asm__ volatile("rep stosq" : "+D"(d), "+c"(words) : "a"(pattern) : "memory");
    __asm__ volatile("rep stosb" : "+D"(d), "+c"(tail) : "a"(pattern) : "memory");
    return dst;
}

void *memmove(void *dst, const void *src, size_t n) {
    if ((uintptr_t)dst <= (uintptr_t)src || (uintptr_t)dst >= (uintptr_t)src + n)
        return memcpy(dst, src, n);
    // Overlapping with dst above src: copy backwards.
    unsigned char *d = (unsigned char *)dst + n - 1;
    const unsigned char *s = (const unsigned char *)src + n - 1;
    __asm__ volatile("std; rep movsb; cld" : "+D"(d), "+S"(s), "+c"(n) : : "memory");
    return dst;
}

int memcmp(const void *a, const void *b, size_t n) {
    const unsigned char *x = a, *y = b;
    for (size_t i = 0; i < n; i++) {
        if (x[i] != y[i]) return x[i] < y[i] ? -1 : 1;
    }
    return 0;
}

size_t strlen(const char *s) {
    size_t n = 0;
    while (s[n]) n++;
    return n;
}

// Hashing seeds for Swift's Dictionary and Set. Not cryptographic: mixed from the TSC
// with splitmix64, which is all a per-boot hash seed needs.
void arc4random_buf(void *buffer, size_t n) {
    static uint64_t state;
    if (state == 0) state = arch_rdtsc() | 1;
    unsigned char *out = buffer;
    while (n > 0) {
        uint64_t z = (state += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        z ^= z >> 31;
        for (int i = 0; i < 8 && n > 0; i++, n--) *out++ = (unsigned char)(z >> (8 * i));
    }
}

// The C allocation interface over Core's per-CPU heap (Core/Memory/KernelHeap.swift).
// Swift reserves these names, so they are defined here and forward to Swift.
void *toro_heap_allocate(size_t size, size_t alignment);
void toro_heap_free(void *pointer);
void *toro_heap_reallocate(void *pointer, size_t size);

void toro_out_of_memory(size_t size);

// The Embedded Swift runtime allocates every object and array buffer through here and
// traps (a bare #UD) when it fails. Admission control (Core/Memory/MemoryBudget.swift)
// keeps outside input from getting here; should it happen anyway, the panic names it.
int posix_memalign(void **out, size_t alignment, size_t size) {
    if (alignment < sizeof(void *) || (alignment & (alignment - 1)) != 0) return 22;  // EINVAL
    void *p = toro_heap_allocate(size, alignment);
    if (!p) toro_out_of_memory(size);
    *out = p;
    return 0;
}

void *malloc(size_t size) { return toro_heap_allocate(size, 16); }

void *calloc(size_t count, size_t size) {
    size_t total;
    if (__builtin_mul_overflow(count, size, &total)) return 0;
    void *p = toro_heap_allocate(total, 16);
    if (p) memset(p, 0, total);
    return p;
}

void *realloc(void *pointer, size_t size) { return toro_heap_reallocate(pointer, size); }

void free(void *pointer) { toro_heap_free(pointer); }

// Swift's Dictionary sizes its table with ceil(); no libm here. Exact for every double:
// values of magnitude 2^52 and above (and NaN) are already integers.
double ceil(double x) {
    if (!(x == x) || x >= 4503599627370496.0 || x <= -4503599627370496.0) return x;
    double truncated = (double)(long long)x;
    return truncated < x ? truncated + 1.0 : truncated;
}

double floor(double x) {
    if (!(x == x) || x >= 4503599627370496.0 || x <= -4503599627370496.0) return x;
    double truncated = (double)(long long)x;
    return truncated > x ? truncated - 1.0 : truncated;
}

#endif  // !__STDC_HOSTED__
