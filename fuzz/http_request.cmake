# The HTTP/1.1 request parser (runtime/server/http_parser.cpp), instrumented
# like the other parsers above; it needs nothing but absl's headers.
add_library(yuan_fuzz_http OBJECT ${PROJECT_SOURCE_DIR}/runtime/server/http_parser.cpp)
target_compile_options(yuan_fuzz_http PRIVATE ${YUAN_FUZZ_FLAGS})
target_include_directories(yuan_fuzz_http PUBLIC ${PROJECT_SOURCE_DIR})
target_link_libraries(yuan_fuzz_http PUBLIC absl::status absl::statusor)

add_executable(http_request_fuzz ${CMAKE_CURRENT_SOURCE_DIR}/http_request_fuzz.cpp)
target_compile_options(http_request_fuzz PRIVATE -fsanitize=fuzzer,address,undefined
                       -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
target_link_options(http_request_fuzz PRIVATE -fsanitize=fuzzer,address,undefined)
target_link_libraries(http_request_fuzz PRIVATE yuan_fuzz_http)
