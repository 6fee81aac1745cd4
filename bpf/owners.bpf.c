// SPDX-License-Identifier: GPL-2.0
/* zombiescan's owner lookup in the kernel: a BPF task_file iterator
 * (kernel >= 5.8 with BTF) that walks every process's fd table and writes,
 * for each descriptor that is a socket, one 16-byte record: the process
 * (tgid), the fd and the socket's inode. The kernel skips the threads that
 * share their leader's fd table. Every socket is written: zombiescan runs
 * it while it reads the socket table, before it knows which it wants, and
 * a hash lookup here would cost as much as writing the record (measured
 * at 200,000 sockets: the walk's time is its cache misses).
 *
 * No vmlinux.h and no CO-RE: the four kernel fields read (task_struct.tgid,
 * file.f_inode, inode.i_mode, inode.i_ino) are read at the placeholder
 * offsets OFF_*, which the loader (src/collect/bpf.rs) replaces with the
 * running kernel's offsets, found in its BTF. The verifier checks each
 * load against that BTF: a wrong offset is refused, never read. The
 * context's layout is the iterator's ABI (DEFINE_BPF_ITER_FUNC in
 * kernel/bpf/task_iter.c). Built by build.rs with `clang -O2 -target bpf`.
 * GPL: bpf_seq_write is a GPL-only helper. */

typedef unsigned short __u16;
typedef unsigned int __u32;
typedef unsigned long long __u64;
typedef void *ptr;

#define SEC(name) __attribute__((section(name), used))
#define S_IFMT 00170000
#define S_IFSOCK 0140000

/* Placeholders, each the offset of exactly one load (build.rs checks). */
#define OFF_TGID 0x7ff1
#define OFF_F_INODE 0x7ff2
#define OFF_I_MODE 0x7ff3
#define OFF_I_INO 0x7ff4

#define FIELD(ptr, off, type) (*(volatile type *)((char *)(ptr) + (off)))

struct seq_file;

struct bpf_iter_meta {
    struct seq_file *seq;
    __u64 session_id;
    __u64 seq_num;
};

struct bpf_iter__task_file {
    struct bpf_iter_meta *meta;
    void *task;
    __u32 fd;
    void *file;
};

/* The helper by its number in include/uapi/linux/bpf.h. */
static long (*bpf_seq_write)(struct seq_file *m, const void *data, __u32 len) = (void *)127;

struct record {
    __u32 tgid;
    __u32 fd;
    __u64 ino;
};

SEC("iter/task_file")
int owners(struct bpf_iter__task_file *ctx)
{
    void *task = ctx->task;
    void *file = ctx->file;
    if (!task || !file)
        return 0;
    void *inode = FIELD(file, OFF_F_INODE, ptr);
    if (!inode)
        return 0;
    if ((FIELD(inode, OFF_I_MODE, __u16) & S_IFMT) != S_IFSOCK)
        return 0;
    struct record r = {
        .tgid = FIELD(task, OFF_TGID, __u32),
        .fd = ctx->fd,
        .ino = FIELD(inode, OFF_I_INO, __u64),
    };
    bpf_seq_write(ctx->meta->seq, &r, sizeof r);
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
