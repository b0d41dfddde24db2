#define FFI_SCOPE "KEYWARD_LIBC"
char *getenv(const char *name);
int setenv(const char *name, const char *value, int overwrite);
int unsetenv(const char *name);
void *dlopen(const char *filename, int flags);
int __cxa_atexit(void (*func)(void *), void *arg, void *dso_handle);
