#ifndef MAILSAVE_CCURL_SHIM_H
#define MAILSAVE_CCURL_SHIM_H

// libcurl's easy API for Swift, loaded when first used. Linking libcurl would load its whole
// dependency tree (OpenSSL, GnuTLS, Kerberos, LDAP, ... and their constructors: about 7 ms)
// into every run of mailsave, also the per-message `process` runs that never talk to
// Salesforce; so libcurl is opened with dlopen by the first Salesforce call instead, and
// only its types and constants come from <curl/curl.h>.
//
// curl_easy_setopt and curl_easy_getinfo are variadic, which Swift cannot call: these typed
// one-line wrappers are what MailSalesforce calls instead.
#include <curl/curl.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stddef.h>

typedef size_t (*mailsave_curl_data_callback)(char *data, size_t size, size_t count, void *context);

struct mailsave_curl_api {
    int loaded;
    CURLcode (*global_init)(long);
    CURL *(*easy_init)(void);
    void (*easy_cleanup)(CURL *);
    void (*easy_reset)(CURL *);
    CURLcode (*easy_perform)(CURL *);
    const char *(*easy_strerror)(CURLcode);
    CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
    CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);
    struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
    void (*slist_free_all)(struct curl_slist *);
};

// The state lives in function-local statics: Swift emits the inline functions it calls from
// a C header, with their locals, but not a header's file-scope variables.
static inline struct mailsave_curl_api *mailsave_curl_state(void) {
    static struct mailsave_curl_api api;
    return &api;
}

#define mailsave_curl (*mailsave_curl_state())

static inline void mailsave_curl_open(void) {
    void *library = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
    if (!library) library = dlopen("libcurl.so", RTLD_NOW | RTLD_LOCAL);
    if (!library) return;
    mailsave_curl.global_init = (CURLcode (*)(long))dlsym(library, "curl_global_init");
    mailsave_curl.easy_init = (CURL *(*)(void))dlsym(library, "curl_easy_init");
    mailsave_curl.easy_cleanup = (void (*)(CURL *))dlsym(library, "curl_easy_cleanup");
    mailsave_curl.easy_reset = (void (*)(CURL *))dlsym(library, "curl_easy_reset");
    mailsave_curl.easy_perform = (CURLcode (*)(CURL *))dlsym(library, "curl_easy_perform");
    mailsave_curl.easy_strerror = (const char *(*)(CURLcode))dlsym(library, "curl_easy_strerror");
    mailsave_curl.easy_setopt = (CURLcode (*)(CURL *, CURLoption, ...))dlsym(library, "curl_easy_setopt");
    mailsave_curl.easy_getinfo = (CURLcode (*)(CURL *, CURLINFO, ...))dlsym(library, "curl_easy_getinfo");
    mailsave_curl.slist_append = (struct curl_slist *(*)(struct curl_slist *, const char *))dlsym(library, "curl_slist_append");
    mailsave_curl.slist_free_all = (void (*)(struct curl_slist *))dlsym(library, "curl_slist_free_all");
    if (mailsave_curl.global_init && mailsave_curl.easy_init && mailsave_curl.easy_cleanup && mailsave_curl.easy_reset
        && mailsave_curl.easy_perform && mailsave_curl.easy_strerror && mailsave_curl.easy_setopt && mailsave_curl.easy_getinfo
        && mailsave_curl.slist_append && mailsave_curl.slist_free_all
        && mailsave_curl.global_init(CURL_GLOBAL_ALL) == CURLE_OK) {
        mailsave_curl.loaded = 1;
    }
}

/// Opens libcurl once (thread-safe); 1 when it is there and initialised, else 0. Every other
/// function here may be called only after it returned 1.
static inline int mailsave_curl_load(void) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, mailsave_curl_open);
    return mailsave_curl.loaded;
}

static inline CURL *mailsave_curl_easy_init(void) { return mailsave_curl.easy_init(); }
static inline void mailsave_curl_easy_cleanup(CURL *handle) { mailsave_curl.easy_cleanup(handle); }
static inline void mailsave_curl_easy_reset(CURL *handle) { mailsave_curl.easy_reset(handle); }
static inline CURLcode mailsave_curl_easy_perform(CURL *handle) { return mailsave_curl.easy_perform(handle); }
static inline const char *mailsave_curl_easy_strerror(CURLcode code) { return mailsave_curl.easy_strerror(code); }
static inline struct curl_slist *mailsave_curl_slist_append(struct curl_slist *list, const char *text) {
    return mailsave_curl.slist_append(list, text);
}
static inline void mailsave_curl_slist_free_all(struct curl_slist *list) { mailsave_curl.slist_free_all(list); }

static inline CURLcode mailsave_curl_setopt_long(CURL *handle, CURLoption option, long value) {
    return mailsave_curl.easy_setopt(handle, option, value);
}

static inline CURLcode mailsave_curl_setopt_off(CURL *handle, CURLoption option, curl_off_t value) {
    return mailsave_curl.easy_setopt(handle, option, value);
}

static inline CURLcode mailsave_curl_setopt_string(CURL *handle, CURLoption option, const char *value) {
    return mailsave_curl.easy_setopt(handle, option, value);
}

static inline CURLcode mailsave_curl_setopt_pointer(CURL *handle, CURLoption option, void *value) {
    return mailsave_curl.easy_setopt(handle, option, value);
}

static inline CURLcode mailsave_curl_setopt_slist(CURL *handle, CURLoption option, struct curl_slist *value) {
    return mailsave_curl.easy_setopt(handle, option, value);
}

static inline CURLcode mailsave_curl_setopt_callback(CURL *handle, CURLoption option, mailsave_curl_data_callback value) {
    return mailsave_curl.easy_setopt(handle, option, value);
}

static inline CURLcode mailsave_curl_getinfo_long(CURL *handle, CURLINFO info, long *value) {
    return mailsave_curl.easy_getinfo(handle, info, value);
}

#endif
