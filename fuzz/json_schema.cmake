# JSON Schema -> GBNF (runtime/grammar/json_schema.cpp, json_pattern.cpp) and
# the matcher over the grammar it makes; objects from fuzz/gbnf.cmake.
#   ./build/fuzz/fuzz/json_schema_fuzz -dict=fuzz/json_schema.dict -max_total_time=60 fuzz/corpus/json_schema
# Seeds (fuzz/corpus/json_schema): schemas written for this project's tests
# and docs.
add_executable(json_schema_fuzz ${CMAKE_CURRENT_SOURCE_DIR}/json_schema_fuzz.cpp)
target_compile_options(json_schema_fuzz PRIVATE -fsanitize=fuzzer,address,undefined
                       -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
target_link_options(json_schema_fuzz PRIVATE -fsanitize=fuzzer,address,undefined)
target_link_libraries(json_schema_fuzz PRIVATE yuan_fuzz_grammar yuan_core)
