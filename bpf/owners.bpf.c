// SPDX-License-Identifier: GPL-2.0
/* zombiescan's owner lookup in the kernel: a BPF task_file iterator
 * (kernel >= 5.8 with BTF) that walks every process's fd table and writes,
 * for each descriptor that is a socket, one 16-byte record: the process
 * (tgid), the fd and the socket's inode. The kernel skips the threads that
 * share their leader's fd table. With `filter` set, only the inodes in
 * `wanted` are written (a --port scan).
 *
 * No vmlinux.h: the few kernel structures read are declared here with
 * preserve_access_index, so that the loader relocates each field against
 * the running kernel's BTF (CO-RE). Built by build.rs with
 * `clang -O2 -g -target bpf`. GPL: bpf_seq_write is a GPL-only helper. */

typedef unsigned char __u8;
typedef unsigned short __u16;
typedef unsigned int __u32;
typedef unsigned long long __u64;

#define SEC(name) __attribute__((section(name), used))
#define CORE __attribute__((preserve_access_index))
#define S_IFMT 00170000
#define S_IFSOCK 0140000

struct seq_file;

struct bpf_iter_meta {
    struct seq_file *seq;
    __u64 session_id;
    __u64 seq_num;
} CORE;

struct inode {
    unsigned short i_mode;
    unsigned long i_ino;
} CORE;

struct file {
    struct inode *f_inode;
} CORE;

struct task_struct {
    int pid;
    int tgid;
} CORE;

struct bpf_iter__task_file {
    union {
        struct bpf_iter_meta *meta;
    };
    union {
        struct task_struct *task;
    };
    __u32 fd;
    union {
        struct file *file;
    };
} CORE;

/* Helpers by their numbers in include/uapi/linux/bpf.h. */
static long (*bpf_seq_write)(struct seq_file *m, const void *data, __u32 len) = (void *)127;
static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)1;

#define BPF_MAP_TYPE_HASH 1
#define BPF_MAP_TYPE_ARRAY 2

/* Maps in the BTF-defined form libbpf and aya read. */
#define __uint(name, val) int(*name)[val]
#define __type(name, val) typeof(val) *name

#define BPF_F_NO_PREALLOC 1

/* The inodes of the wanted sockets (a --port scan sets them), allocated as
 * they are inserted. */
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 65536);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, __u64);
    __type(value, __u8);
} wanted SEC(".maps");

/* Element 0: 1 to write only the wanted inodes. */
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, __u32);
} filter SEC(".maps");

struct record {
    __u32 tgid;
    __u32 fd;
    __u64 ino;
};

SEC("iter/task_file")
int owners(struct bpf_iter__task_file *ctx)
{
    struct task_struct *task = ctx->task;
    struct file *file = ctx->file;
    if (!task || !file)
        return 0;
    struct inode *inode = file->f_inode;
    if (!inode || (inode->i_mode & S_IFMT) != S_IFSOCK)
        return 0;
    struct record r = {
        .tgid = (__u32)task->tgid,
        .fd = ctx->fd,
        .ino = (__u64)inode->i_ino,
    };
    __u32 zero = 0;
    __u32 *only = bpf_map_lookup_elem(&filter, &zero);
    if (only && *only && !bpf_map_lookup_elem(&wanted, &r.ino))
        return 0;
    bpf_seq_write(ctx->meta->seq, &r, sizeof r);
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
