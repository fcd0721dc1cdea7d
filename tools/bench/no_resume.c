// LD_PRELOAD shim for wrk (tools/bench/tls.sh): every TLS connection wrk opens does a
// full handshake. wrk reuses one SSL object per connection slot: on reconnect it calls
// SSL_clear(), which keeps the last session, so the next SSL_connect() offers it and
// the server resumes (about half of wrk's reconnects with `Connection: close`, nearly
// all of h2load's). Dropping the session right after SSL_clear() makes every
// handshake a full one: a fresh key exchange and a certificate signature.
// Build: cc -shared -fPIC -O2 -o no_resume.so no_resume.c -ldl
#define _GNU_SOURCE
#include <dlfcn.h>

typedef struct ssl_st SSL;
typedef struct ssl_session_st SSL_SESSION;

// Both looked up at run time, so the shim links against nothing but libdl and loads
// harmlessly into processes without libssl.
int SSL_clear(SSL* ssl) {
  static int (*real_clear)(SSL*);
  static int (*set_session)(SSL*, SSL_SESSION*);
  if (real_clear == 0) {
    real_clear = (int (*)(SSL*))dlsym(RTLD_NEXT, "SSL_clear");
    set_session = (int (*)(SSL*, SSL_SESSION*))dlsym(RTLD_NEXT, "SSL_set_session");
  }
  int ok = real_clear(ssl);
  set_session(ssl, 0);  // no session: the next SSL_connect() starts a full handshake
  return ok;
}
