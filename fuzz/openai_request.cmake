# The OpenAI request parser / validator and response builders of `yuan serve`
# (runtime/server/openai_api.cpp), instrumented like the parsers above. It is
# free of the engine (limits come in as plain numbers), so only the headers of
# engine/chat are needed, plus absl strings and nlohmann-json, and the
# grammar objects of fuzz/gbnf.cmake (structured output compiles schemas and
# grammars while parsing; a target defined in a later file links fine).
find_package(nlohmann_json REQUIRED)
add_library(yuan_fuzz_openai OBJECT ${PROJECT_SOURCE_DIR}/runtime/server/openai_api.cpp)
target_compile_options(yuan_fuzz_openai PRIVATE ${YUAN_FUZZ_FLAGS})
target_link_libraries(yuan_fuzz_openai PUBLIC yuan_core nlohmann_json::nlohmann_json)

add_executable(openai_request_fuzz ${CMAKE_CURRENT_SOURCE_DIR}/openai_request_fuzz.cpp)
target_compile_options(openai_request_fuzz PRIVATE -fsanitize=fuzzer,address,undefined
                       -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
target_link_options(openai_request_fuzz PRIVATE -fsanitize=fuzzer,address,undefined)
target_link_libraries(openai_request_fuzz PRIVATE yuan_fuzz_openai yuan_fuzz_grammar yuan_core)
