// The glibc functions a static meshgate must not use, defined here so that glibc's versions (which
// load NSS modules or shared objects at run time, and draw the "requires at runtime the shared
// libraries from the glibc version used for linking" link warning) stay out of the binary
// (meson -Dstatic=true only; docs/decisions.md).
//
// None of them is called by meshgate. They are reachable only through library code we link but do
// not use: OpenSSL's DSO loader (dynamic engines and providers; meshgate uses the built-in default
// provider) and BIO_gethostbyname, libuv's uv_os_get_passwd, c-ares' service-name lookups (meshgate
// passes numeric ports). Each fails the way the real one fails when there is nothing to find.
#include <dlfcn.h>
#include <netdb.h>
#include <pwd.h>

extern "C" {

// The dl* family by `-Wl,--wrap` (meson.build): glibc's own dlopen stays linked for its internal use
// (iconv's gconv modules, pulled in by libstdc++'s locale code), so defining dlopen here would not
// keep the warning away; wrapping redirects only the calls from the libraries we link.
void* __wrap_dlopen(const char*, int) { return nullptr; }
void* __wrap_dlsym(void*, const char*) { return nullptr; }
int __wrap_dlclose(void*) { return -1; }
char* __wrap_dlerror(void) { return const_cast<char*>("dynamic loading is not available in the static meshgate"); }
int __wrap_dladdr(const void*, Dl_info*) { return 0; }

int getpwuid_r(uid_t, passwd*, char*, size_t, passwd** result) {
  *result = nullptr;  // not found
  return 0;
}

hostent* gethostbyname(const char*) {
  h_errno = HOST_NOT_FOUND;
  return nullptr;
}

servent* getservbyname(const char*, const char*) { return nullptr; }

int getservbyport_r(int, const char*, servent*, char*, size_t, servent** result) {
  *result = nullptr;  // not found
  return 0;
}

}  // extern "C"
