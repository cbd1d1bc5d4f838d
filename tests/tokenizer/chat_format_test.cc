// Llama 3.1 prompts against strings written out by hand from Meta's documented format
// (llama.com "Llama 3.1 model card & prompt formats" and the Instruct chat template).
#include "engine/tokenizer/chat_format.h"

#include <gtest/gtest.h>

#include "tests/tokenizer/testdata.h"

namespace herd {
namespace {

nlohmann::json weather_tool() {
  return nlohmann::json::parse(R"({
    "type": "function",
    "function": {
      "name": "get_current_conditions",
      "description": "Get the current weather conditions for a specific location",
      "parameters": {
        "type": "object",
        "properties": {"location": {"type": "string"}},
        "required": ["location"]
      }
    }
  })");
}

// nlohmann::json keeps object keys sorted, so the tool renders in this key order.
const char* const kWeatherToolText = R"({
    "function": {
        "description": "Get the current weather conditions for a specific location",
        "name": "get_current_conditions",
        "parameters": {
            "properties": {
                "location": {
                    "type": "string"
                }
            },
            "required": [
                "location"
            ],
            "type": "object"
        }
    },
    "type": "function"
})";

TEST(ChatFormat, SystemAndUser) {
  std::vector<ChatMessage> msgs = {{"system", "You are a helpful assistant", {}, ""},
                                   {"user", "What is the color of the sky?", {}, ""}};
  EXPECT_EQ(format_llama31_chat(msgs),
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
            "Cutting Knowledge Date: December 2023\n"
            "Today Date: 26 Jul 2024\n\n"
            "You are a helpful assistant<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\n"
            "What is the color of the sky?<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

TEST(ChatFormat, NoSystemMessageMultiTurnNoGenerationPrompt) {
  std::vector<ChatMessage> msgs = {
      {"user", "  Hi  ", {}, ""}, {"assistant", "Hello!\n", {}, ""}, {"user", "Bye", {}, ""}};
  ChatFormatOptions o;
  o.add_generation_prompt = false;
  o.today_date = "23 Jul 2024";
  EXPECT_EQ(format_llama31_chat(msgs, o),
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
            "Cutting Knowledge Date: December 2023\n"
            "Today Date: 23 Jul 2024\n\n"
            "<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nBye<|eot_id|>");
}

TEST(ChatFormat, BuiltinIpythonEnvironment) {
  std::vector<ChatMessage> msgs = {{"user", "Plot a sine wave", {}, ""}};
  ChatFormatOptions o;
  o.builtin_ipython = true;
  EXPECT_EQ(format_llama31_chat(msgs, o),
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
            "Environment: ipython\n"
            "Cutting Knowledge Date: December 2023\n"
            "Today Date: 26 Jul 2024\n\n"
            "<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nPlot a sine wave<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

TEST(ChatFormat, JsonToolsInFirstUserMessage) {
  std::vector<ChatMessage> msgs = {{"system", "You are a helpful assistant", {}, ""},
                                   {"user", "What is the weather in SF?", {}, ""}};
  ChatFormatOptions o;
  o.tools = nlohmann::json::array({weather_tool()});
  EXPECT_EQ(format_llama31_chat(msgs, o),
            std::string("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
                        "Environment: ipython\n"
                        "Cutting Knowledge Date: December 2023\n"
                        "Today Date: 26 Jul 2024\n\n"
                        "You are a helpful assistant<|eot_id|>"
                        "<|start_header_id|>user<|end_header_id|>\n\n"
                        "Given the following functions, please respond with a JSON for a "
                        "function call with its proper arguments that best answers the given "
                        "prompt.\n\n"
                        "Respond in the format {\"name\": function name, \"parameters\": "
                        "dictionary of argument name and its value}.Do not use variables.\n\n") +
                kWeatherToolText +
                "\n\n"
                "What is the weather in SF?<|eot_id|>"
                "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

TEST(ChatFormat, JsonToolsInSystemWhenNoUserFirst) {
  std::vector<ChatMessage> msgs = {{"assistant", "Hello", {}, ""}};
  ChatFormatOptions o;
  o.tools = nlohmann::json::array({weather_tool()});
  o.add_generation_prompt = false;
  EXPECT_EQ(format_llama31_chat(msgs, o),
            std::string("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
                        "Environment: ipython\n"
                        "Cutting Knowledge Date: December 2023\n"
                        "Today Date: 26 Jul 2024\n\n"
                        "You have access to the following functions. To call a function, please "
                        "respond with JSON for a function call."
                        "Respond in the format {\"name\": function name, \"parameters\": "
                        "dictionary of argument name and its value}.Do not use variables.\n\n") +
                kWeatherToolText +
                "\n\n<|eot_id|>"
                "<|start_header_id|>assistant<|end_header_id|>\n\nHello<|eot_id|>");
}

TEST(ChatFormat, ToolCallAndToolResult) {
  ChatMessage call{
      "assistant", "", {{"call_1", "get_current_conditions", R"({"location":"SF"})"}}, ""};
  std::vector<ChatMessage> msgs = {
      {"user", "Weather?", {}, ""}, call, {"tool", "{\"temp\": 18}", {}, "call_1"}};
  std::string prefix =
      "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
      "Cutting Knowledge Date: December 2023\n"
      "Today Date: 26 Jul 2024\n\n"
      "<|eot_id|>"
      "<|start_header_id|>user<|end_header_id|>\n\nWeather?<|eot_id|>"
      "<|start_header_id|>assistant<|end_header_id|>\n\n"
      "{\"name\": \"get_current_conditions\", \"parameters\": {\"location\": \"SF\"}}";
  std::string suffix =
      "<|start_header_id|>ipython<|end_header_id|>\n\n{\"temp\": 18}<|eot_id|>"
      "<|start_header_id|>assistant<|end_header_id|>\n\n";
  EXPECT_EQ(format_llama31_chat(msgs), prefix + "<|eot_id|>" + suffix);
  // In the ipython environment a tool call ends the message with <|eom_id|>.
  ChatFormatOptions o;
  o.builtin_ipython = true;
  std::string with_env = format_llama31_chat(msgs, o);
  EXPECT_NE(with_env.find("\"SF\"}}<|eom_id|><|start_header_id|>ipython"), std::string::npos)
      << with_env;
}

TEST(ChatFormat, TokenizesToHeaderIds) {
  HERD_TOKENIZER_OR_SKIP(tok, "llama3-tokenizer");
  auto ids = tok->encode(format_llama31_chat({{"user", "Hi", {}, ""}}), true);
  ASSERT_GE(ids.size(), 4u);
  EXPECT_EQ(ids[0], 128000);
  EXPECT_EQ(ids[1], 128006);
  EXPECT_EQ(ids[ids.size() - 1], 271);  // "\n\n" after the assistant header
  EXPECT_EQ(ids[ids.size() - 2], 128007);
}

}  // namespace
}  // namespace herd
