/* The code leakwatch places in a process to load the sampling library (src/inject/stub.h).
 *
 * It is never executed in leakwatch: its bytes, from lw_stub_begin to lw_stub_end, are
 * copied into an executable page of the target, the data slots below patched, and one
 * stopped thread of the target is pointed at lw_stub_begin with its stack pointer at the top
 * of a private stack.  Position-independent: code and data are addressed %rip-relative.
 *
 *   save the extended state (xsave64, or fxsave64 where the CPU has no XSAVE)
 *   dlopen(path, flags) -> handle;  dlsym(handle, init name) -> init
 *   init(&config, &ctl->init_result) -> rc           (or dlerror's message copied to ctl)
 *   ctl->done = 1
 *   restore the extended state and every general register, then jump to where the thread
 *   was (leakwatch has already applied the kernel's syscall-restart rule to that state)
 *
 * The thread finishes this on its own: leakwatch may detach (or die) at any point after
 * starting it and the process is left as it was, plus the library.  ctl is a read-write
 * mapping (layout in stub.h); everything the stub only reads lives here, read-only.
 */
	.section .rodata.lw_stub, "a"
	.balign 64
	.globl lw_stub_begin, lw_stub_end
	.globl lw_stub_ctl, lw_stub_use_xsave, lw_stub_dlopen_flags, lw_stub_fn_dlopen
	.globl lw_stub_fn_dlsym, lw_stub_fn_dlerror, lw_stub_regs, lw_stub_config
	.globl lw_stub_init_name, lw_stub_path

/* ctl layout (stub.h) */
	.set CTL_DONE, 0
	.set CTL_HANDLE, 8
	.set CTL_INIT, 16
	.set CTL_RC, 24
	.set CTL_MESSAGE, 64
	.set CTL_MESSAGE_SIZE, 256
	.set CTL_RESULT, 320
	.set CTL_XSAVE, 4096

lw_stub_begin:
	movq	lw_stub_ctl(%rip), %rbx
	cmpl	$0, lw_stub_use_xsave(%rip)
	je	1f
	movl	$-1, %eax
	movl	$-1, %edx
	xsave64	CTL_XSAVE(%rbx)
	jmp	2f
1:	fxsave64 CTL_XSAVE(%rbx)
2:	cld
	leaq	lw_stub_path(%rip), %rdi
	movl	lw_stub_dlopen_flags(%rip), %esi
	call	*lw_stub_fn_dlopen(%rip)
	movq	%rax, CTL_HANDLE(%rbx)
	testq	%rax, %rax
	jz	3f
	movq	%rax, %rdi
	leaq	lw_stub_init_name(%rip), %rsi
	call	*lw_stub_fn_dlsym(%rip)
	movq	%rax, CTL_INIT(%rbx)
	testq	%rax, %rax
	jz	5f
	leaq	lw_stub_config(%rip), %rdi
	leaq	CTL_RESULT(%rbx), %rsi
	call	*%rax
	movq	%rax, CTL_RC(%rbx)
	jmp	5f
	/* dlopen failed: copy dlerror()'s message (it is freed by the next dl* call) */
3:	movq	lw_stub_fn_dlerror(%rip), %rax
	testq	%rax, %rax
	jz	5f
	call	*%rax
	testq	%rax, %rax
	jz	5f
	leaq	CTL_MESSAGE(%rbx), %rdi
	movl	$CTL_MESSAGE_SIZE - 1, %ecx
4:	movb	(%rax), %dl
	movb	%dl, (%rdi)
	testb	%dl, %dl
	jz	5f
	incq	%rax
	incq	%rdi
	decl	%ecx
	jnz	4b
5:	movl	$1, CTL_DONE(%rbx)
	cmpl	$0, lw_stub_use_xsave(%rip)
	je	6f
	movl	$-1, %eax
	movl	$-1, %edx
	xrstor64 CTL_XSAVE(%rbx)
	jmp	7f
6:	fxrstor64 CTL_XSAVE(%rbx)
7:	leaq	lw_stub_regs+8*16(%rip), %rsp	/* -> the saved rflags */
	movq	lw_stub_regs+8*0(%rip), %rax
	movq	lw_stub_regs+8*2(%rip), %rcx
	movq	lw_stub_regs+8*3(%rip), %rdx
	movq	lw_stub_regs+8*4(%rip), %rsi
	movq	lw_stub_regs+8*5(%rip), %rdi
	movq	lw_stub_regs+8*6(%rip), %rbp
	movq	lw_stub_regs+8*7(%rip), %r8
	movq	lw_stub_regs+8*8(%rip), %r9
	movq	lw_stub_regs+8*9(%rip), %r10
	movq	lw_stub_regs+8*10(%rip), %r11
	movq	lw_stub_regs+8*11(%rip), %r12
	movq	lw_stub_regs+8*12(%rip), %r13
	movq	lw_stub_regs+8*13(%rip), %r14
	movq	lw_stub_regs+8*14(%rip), %r15
	popfq
	movq	lw_stub_regs+8*15(%rip), %rsp
	movq	lw_stub_regs+8*1(%rip), %rbx
	jmp	*lw_stub_regs+8*17(%rip)

	.balign 8
lw_stub_ctl:		.quad 0
lw_stub_fn_dlopen:	.quad 0
lw_stub_fn_dlsym:	.quad 0
lw_stub_fn_dlerror:	.quad 0
lw_stub_use_xsave:	.long 0
lw_stub_dlopen_flags:	.long 0
/* rax rbx rcx rdx rsi rdi rbp r8 r9 r10 r11 r12 r13 r14 r15 rsp rflags rip */
lw_stub_regs:		.fill 18, 8, 0
lw_stub_config:		.fill 64, 1, 0
lw_stub_init_name:	.fill 64, 1, 0
lw_stub_path:		.fill 4096, 1, 0
lw_stub_end:
	.section .note.GNU-stack, "", @progbits
