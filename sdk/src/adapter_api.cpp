// LoRA adapters in the C ABI: load one for an engine, choose a set per
// session (or per call, through yuan_generate_options.adapters).
#include "sdk/src/handles.h"

using yuan::api::BusyGuard;
using yuan::api::Fail;
using yuan::api::Ok;

extern "C" {

yuan_status yuan_adapter_load(yuan_engine* engine, const char* path, yuan_adapter** out_adapter) {
  YUAN_API_BEGIN
  YUAN_CHECK_ENGINE(engine);
  if (path == nullptr || path[0] == '\0') return Fail(YUAN_ERR_INVALID_ARGUMENT, "path is NULL or empty");
  if (out_adapter == nullptr) return Fail(YUAN_ERR_INVALID_ARGUMENT, "out_adapter is NULL");
  absl::StatusOr<std::shared_ptr<const yuan::api::BackendAdapter>> a =
      engine->backend->LoadAdapter(path);
  if (!a.ok()) return Fail(a.status());
  auto* handle = new yuan_adapter{std::move(*a)};
  yuan::api::Adapters().Add(handle);
  *out_adapter = handle;
  return Ok();
  YUAN_API_END
}

void yuan_adapter_free(yuan_adapter* adapter) {
  if (adapter == nullptr) return;
  if (!yuan::api::Adapters().Remove(adapter)) {
    Fail(YUAN_ERR_INVALID_ARGUMENT, "yuan_adapter_free: not a live adapter handle");
    return;
  }
  delete adapter;  // sessions keep their own references to the adapter
}

yuan_status yuan_session_set_adapters(yuan_session* session, const yuan_adapter_choice* adapters,
                                      size_t n_adapters) {
  YUAN_API_BEGIN
  YUAN_CHECK_SESSION(session);
  std::vector<yuan::api::AdapterUse> uses;
  if (yuan_status st = yuan::api::ReadAdapterChoices(adapters, n_adapters, &uses); st != YUAN_OK) {
    return st;
  }
  BusyGuard guard(session->state.get());
  if (!guard.acquired()) return Fail(YUAN_ERR_FAILED_PRECONDITION, yuan::api::kSessionBusy);
  // Checked now (another engine's adapter, what a remote server cannot do)
  // rather than at the next call.
  if (absl::Status st = session->state->impl->SetAdapters(uses); !st.ok()) return Fail(st);
  session->state->adapters = std::move(uses);
  return Ok();
  YUAN_API_END
}

}  // extern "C"
