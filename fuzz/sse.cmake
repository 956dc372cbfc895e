# The server-sent events parser and the OpenAI chunk / model list / error
# JSON of the remote client (runtime/remote/sse.cpp, openai_json.cpp),
# instrumented like the parsers above; no curl needed.
#   ./build/fuzz/fuzz/sse_fuzz -max_total_time=60 fuzz/corpus/sse
add_library(yuan_fuzz_sse OBJECT
  ${PROJECT_SOURCE_DIR}/runtime/remote/sse.cpp
  ${PROJECT_SOURCE_DIR}/runtime/remote/openai_json.cpp)
target_compile_options(yuan_fuzz_sse PRIVATE ${YUAN_FUZZ_FLAGS})
target_link_libraries(yuan_fuzz_sse PUBLIC yuan_core nlohmann_json::nlohmann_json)

add_executable(sse_fuzz ${CMAKE_CURRENT_SOURCE_DIR}/sse_fuzz.cpp)
target_compile_options(sse_fuzz PRIVATE -fsanitize=fuzzer,address,undefined
                       -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
target_link_options(sse_fuzz PRIVATE -fsanitize=fuzzer,address,undefined)
target_link_libraries(sse_fuzz PRIVATE yuan_fuzz_sse yuan_core)
