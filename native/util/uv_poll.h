// The few libuv calls the JavaScript-thread receive paths need, declared here
// because the build uses Node-API headers only (node-api-headers ships no
// uv.h). Node exports libuv's symbols to addons, and libuv 1.x keeps its ABI:
// handles are sized at run time (uv_handle_size) and reached through
// uv_handle_{get,set}_data (libuv >= 1.19, Node >= 10), so no struct layout is
// assumed here. The loop comes from napi_get_uv_event_loop().
#pragma once
#include <stddef.h>

extern "C" {
struct uv_loop_s;
struct uv_handle_s;
struct uv_poll_s;
typedef void (*uv_poll_cb)(uv_poll_s* handle, int status, int events);
typedef void (*uv_close_cb)(uv_handle_s* handle);
size_t uv_handle_size(int type);  // uv_handle_type
int uv_poll_init(uv_loop_s* loop, uv_poll_s* handle, int fd);
int uv_poll_start(uv_poll_s* handle, int events, uv_poll_cb cb);
int uv_poll_stop(uv_poll_s* handle);
void uv_close(uv_handle_s* handle, uv_close_cb cb);
void uv_ref(uv_handle_s* handle);
void uv_unref(uv_handle_s* handle);
void uv_handle_set_data(uv_handle_s* handle, void* data);
void* uv_handle_get_data(const uv_handle_s* handle);
}

namespace onbus {
constexpr int kUvPollType = 8;  // UV_POLL in libuv 1.x's uv_handle_type
constexpr int kUvReadable = 1;  // UV_READABLE
inline uv_handle_s* UvHandle(uv_poll_s* p) { return reinterpret_cast<uv_handle_s*>(p); }
}  // namespace onbus
