# The trainer's readers of user files: LoadDataset (trainer/data.cpp; chat
# JSONL through a chat template, and plain text) then PackBatches on what it
# returns, and ReadLossCsv (trainer/log.cpp) with the CSV writer and the plot
# on what it returns; instrumented like the parsers above.
#   ./build/fuzz/fuzz/trainer_data_fuzz -dict=fuzz/trainer_data.dict \
#       -max_total_time=60 <a scratch copy of fuzz/corpus/trainer_data>
# Seeds (fuzz/corpus/trainer_data): small chat, text and CSV files written
# for this target, each after its mode byte (see trainer_data_fuzz.cpp).
# The Jinja engine is compiled instrumented too (yuan_fuzz_chat): message
# contents reach it as template values. The tokenizer and GGUF objects come
# from CMakeLists.txt.
find_package(nlohmann_json REQUIRED)
add_library(yuan_fuzz_chat OBJECT
  ${PROJECT_SOURCE_DIR}/runtime/chat/jinja_value.cpp
  ${PROJECT_SOURCE_DIR}/runtime/chat/jinja_text.cpp
  ${PROJECT_SOURCE_DIR}/runtime/chat/jinja_lexer.cpp
  ${PROJECT_SOURCE_DIR}/runtime/chat/jinja_parser.cpp
  ${PROJECT_SOURCE_DIR}/runtime/chat/jinja_builtins.cpp
  ${PROJECT_SOURCE_DIR}/runtime/chat/jinja_interp.cpp
  ${PROJECT_SOURCE_DIR}/runtime/chat/chat_template.cpp
  ${PROJECT_SOURCE_DIR}/runtime/chat/builtin_templates.cpp)
target_compile_options(yuan_fuzz_chat PRIVATE ${YUAN_FUZZ_FLAGS})
target_link_libraries(yuan_fuzz_chat PUBLIC yuan_core)

add_library(yuan_fuzz_trainer_data OBJECT
  ${PROJECT_SOURCE_DIR}/trainer/data.cpp
  ${PROJECT_SOURCE_DIR}/trainer/log.cpp)
target_compile_options(yuan_fuzz_trainer_data PRIVATE ${YUAN_FUZZ_FLAGS})
target_link_libraries(yuan_fuzz_trainer_data PUBLIC yuan_core nlohmann_json::nlohmann_json)

add_executable(trainer_data_fuzz ${CMAKE_CURRENT_SOURCE_DIR}/trainer_data_fuzz.cpp)
target_compile_options(trainer_data_fuzz PRIVATE -fsanitize=fuzzer,address,undefined
                       -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
target_link_options(trainer_data_fuzz PRIVATE -fsanitize=fuzzer,address,undefined)
target_link_libraries(trainer_data_fuzz PRIVATE yuan_fuzz_trainer_data yuan_fuzz_chat
                      yuan_fuzz_tokenizer yuan_fuzz_gguf yuan_core)
