#ifndef MAILSAVE_CCURL_SHIM_H
#define MAILSAVE_CCURL_SHIM_H

// libcurl's easy API for Swift. curl_easy_setopt and curl_easy_getinfo are variadic, which
// Swift cannot call: these typed one-line wrappers are what MailSalesforce calls instead.
#include <curl/curl.h>

typedef size_t (*mailsave_curl_data_callback)(char *data, size_t size, size_t count, void *context);

static inline CURLcode mailsave_curl_global_init(void) { return curl_global_init(CURL_GLOBAL_ALL); }

static inline CURLcode mailsave_curl_setopt_long(CURL *handle, CURLoption option, long value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode mailsave_curl_setopt_off(CURL *handle, CURLoption option, curl_off_t value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode mailsave_curl_setopt_string(CURL *handle, CURLoption option, const char *value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode mailsave_curl_setopt_pointer(CURL *handle, CURLoption option, void *value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode mailsave_curl_setopt_slist(CURL *handle, CURLoption option, struct curl_slist *value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode mailsave_curl_setopt_callback(CURL *handle, CURLoption option, mailsave_curl_data_callback value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode mailsave_curl_getinfo_long(CURL *handle, CURLINFO info, long *value) {
    return curl_easy_getinfo(handle, info, value);
}

#endif
