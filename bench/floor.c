/* The floor of an owner lookup through /proc, for bench.py: one readdir of
 * /proc, and for every process one readdir of /proc/PID/fd and one
 * readlinkat per descriptor, on one core, counting the socket links. No
 * map from inode to owner is built: what zombiescan does on top of this
 * is its own cost. Built by bench.py with `cc -O2`. */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(void) {
    DIR *proc = opendir("/proc");
    if (!proc) {
        perror("/proc");
        return 1;
    }
    long processes = 0, fds = 0, sockets = 0;
    struct dirent *p;
    while ((p = readdir(proc))) {
        if (p->d_name[0] < '0' || p->d_name[0] > '9')
            continue;
        char path[64];
        snprintf(path, sizeof path, "/proc/%s/fd", p->d_name);
        int dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
            continue;
        DIR *fd_dir = fdopendir(dfd);
        if (!fd_dir) {
            close(dfd);
            continue;
        }
        processes++;
        struct dirent *f;
        while ((f = readdir(fd_dir))) {
            if (f->d_name[0] == '.')
                continue;
            char link[64];
            ssize_t n = readlinkat(dfd, f->d_name, link, sizeof link - 1);
            if (n <= 0)
                continue;
            fds++;
            if (n > 8 && memcmp(link, "socket:[", 8) == 0)
                sockets++;
        }
        closedir(fd_dir);
    }
    closedir(proc);
    printf("%ld processes, %ld descriptors, %ld sockets\n", processes, fds, sockets);
    return 0;
}
