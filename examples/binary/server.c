/* An executable you built yourself, for skiff's binary buildpack: a tiny HTTP server on $PORT.
 * Build it, then push the folder:  cc -O2 -static -o server server.c && skiff push hello-c -p . */

#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(void) {
  const char *port = getenv("PORT");
  const char *index = getenv("CF_INSTANCE_INDEX");
  int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port ? atoi(port) : 8080), .sin_addr.s_addr = htonl(INADDR_ANY)};
  signal(SIGPIPE, SIG_IGN);
  setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(s, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(s, 128) != 0) { perror("listen"); return 1; }
  printf("binary listening on %s, instance %s\n", port ? port : "8080", index ? index : "0");
  fflush(stdout);
  for (;;) {
    int c = accept(s, NULL, NULL);
    if (c < 0) continue;
    char req[4096];
    ssize_t n = read(c, req, sizeof req); /* one read is enough for a small GET */
    (void)n;
    char body[128], head[256];
    int blen = snprintf(body, sizeof body, "hello from a binary (instance %s, pid %d)\n", index ? index : "0", (int)getpid());
    int hlen = snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: %d\r\nconnection: close\r\n\r\n", blen);
    if (write(c, head, hlen) == hlen) (void)!write(c, body, blen);
    close(c);
  }
}
