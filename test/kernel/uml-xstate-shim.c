/*
 * LD_PRELOAD shim for Debian's linux.uml (6.1) on hosts whose CPU has AMX.
 *
 * UML restores a guest thread's FPU state with
 *   ptrace(PTRACE_SETREGSET, pid, NT_X86_XSTATE, {buf, len})
 * where len is the XSAVE size the host reported for that (AMX-less) thread
 * (2696 bytes here). The host kernel, however, insists that a SETREGSET
 * buffer be exactly the *maximum* user XSAVE size, which with AMX tile data
 * is ~11 KB, and answers EFAULT otherwise. UML then dies on the first switch
 * to user space ("userspace - ptrace set fp regs failed, errno = 14").
 *
 * Fix: pad such a buffer with zeroes up to the size the CPU reports for all
 * enabled XSAVE features (CPUID leaf 0xD, EBX). The XSAVE header inside the
 * buffer still says which components are present, and it never lists AMX
 * (the guest has no AMX permission), so the zero padding is never loaded.
 * Every other ptrace call goes straight to libc.
 */
#define _GNU_SOURCE
#include <cpuid.h>
#include <dlfcn.h>
#include <elf.h>
#include <stdarg.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/types.h>
#include <sys/uio.h>

typedef long (*ptrace_fn)(enum __ptrace_request, ...);

/* UML calls ptrace from one thread only, so one static buffer is enough. */
static unsigned char padded[64 * 1024] __attribute__((aligned(64)));

long ptrace(enum __ptrace_request req, ...)
{
	static ptrace_fn real;
	va_list ap;
	pid_t pid;
	void *addr, *data;

	va_start(ap, req);
	pid = va_arg(ap, pid_t);
	addr = va_arg(ap, void *);
	data = va_arg(ap, void *);
	va_end(ap);

	if (!real)
		real = (ptrace_fn)dlsym(RTLD_NEXT, "ptrace");

	if (req == PTRACE_SETREGSET && (unsigned long)addr == NT_X86_XSTATE) {
		unsigned int eax, ebx, ecx, edx;
		struct iovec *iov = data;

		__cpuid_count(0xd, 0, eax, ebx, ecx, edx);
		if (iov->iov_len < ebx && ebx <= sizeof(padded)) {
			struct iovec full = { padded, ebx };

			memcpy(padded, iov->iov_base, iov->iov_len);
			memset(padded + iov->iov_len, 0, ebx - iov->iov_len);
			return real(req, pid, addr, &full);
		}
	}
	return real(req, pid, addr, data);
}
