# The adapter readers (runtime/adapter/adapter.cpp): the .yadp FlatBuffers
# parser (generated Verifier + our checks) and the GGUF LoRA reader,
# instrumented like the parsers above.
#   ./build/fuzz/fuzz/adapter_fuzz -max_total_time=60 fuzz/corpus/adapter
# Seeds (fuzz/corpus/adapter, all made by this project's code): small
# rank-4 adapters written by tests/adapter/write_peft_adapter.py (random
# values, llama and qwen2 shapes) and converted with `yuan adapter convert`
# to .yadp and GGUF LoRA.
find_package(FlatBuffers REQUIRED)
add_library(yuan_fuzz_adapter OBJECT
  ${PROJECT_SOURCE_DIR}/runtime/adapter/adapter.cpp
  ${PROJECT_SOURCE_DIR}/runtime/model/safetensors_writer.cpp)
add_dependencies(yuan_fuzz_adapter yuan_adapter_schema)
target_include_directories(yuan_fuzz_adapter PUBLIC ${PROJECT_BINARY_DIR}/runtime/adapter/gen)
target_compile_options(yuan_fuzz_adapter PRIVATE ${YUAN_FUZZ_FLAGS})
target_link_libraries(yuan_fuzz_adapter PUBLIC yuan_core nlohmann_json::nlohmann_json
                      flatbuffers::flatbuffers)

add_executable(adapter_fuzz ${CMAKE_CURRENT_SOURCE_DIR}/adapter_fuzz.cpp)
target_compile_options(adapter_fuzz PRIVATE -fsanitize=fuzzer,address,undefined
                       -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
target_link_options(adapter_fuzz PRIVATE -fsanitize=fuzzer,address,undefined)
target_link_libraries(adapter_fuzz PRIVATE yuan_fuzz_adapter yuan_fuzz_safetensors yuan_fuzz_gguf
                      yuan_core)
