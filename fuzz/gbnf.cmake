# The GBNF parser and the grammar matcher (runtime/grammar), instrumented like
# the parsers above; fuzz/json_schema.cmake reuses the same objects.
#   ./build/fuzz/fuzz/gbnf_fuzz -dict=fuzz/gbnf.dict -max_total_time=60 fuzz/corpus/gbnf
# Seeds (fuzz/corpus/gbnf): grammars written for this project's tests and
# docs, each followed by a NUL and some text to match.
find_package(nlohmann_json REQUIRED)
add_library(yuan_fuzz_grammar OBJECT
  ${PROJECT_SOURCE_DIR}/runtime/grammar/grammar.cpp
  ${PROJECT_SOURCE_DIR}/runtime/grammar/gbnf_parser.cpp
  ${PROJECT_SOURCE_DIR}/runtime/grammar/token_vocab.cpp
  ${PROJECT_SOURCE_DIR}/runtime/grammar/matcher.cpp
  ${PROJECT_SOURCE_DIR}/runtime/grammar/json_schema.cpp
  ${PROJECT_SOURCE_DIR}/runtime/grammar/json_pattern.cpp)
target_compile_options(yuan_fuzz_grammar PRIVATE ${YUAN_FUZZ_FLAGS})
target_link_libraries(yuan_fuzz_grammar PUBLIC yuan_core nlohmann_json::nlohmann_json)

add_executable(gbnf_fuzz ${CMAKE_CURRENT_SOURCE_DIR}/gbnf_fuzz.cpp)
target_compile_options(gbnf_fuzz PRIVATE -fsanitize=fuzzer,address,undefined
                       -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
target_link_options(gbnf_fuzz PRIVATE -fsanitize=fuzzer,address,undefined)
target_link_libraries(gbnf_fuzz PRIVATE yuan_fuzz_grammar yuan_core)
