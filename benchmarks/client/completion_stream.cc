#include "benchmarks/client/completion_stream.h"

#include <nlohmann/json.hpp>

namespace herd::bench {

void CompletionStreamReader::feed(std::string_view bytes, double t) {
  for (const std::string& data : sse_.feed(bytes)) payload(data, t);
}

void CompletionStreamReader::payload(const std::string& data, double t) {
  if (data == "[DONE]") {
    done_ = true;
    return;
  }
  nlohmann::json j = nlohmann::json::parse(data, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    rec_.on_error("the server sent a chunk that is not a JSON object: " + data.substr(0, 200));
    return;
  }
  if (auto e = j.find("error"); e != j.end() && !e->is_null()) {
    std::string msg = e->is_object() && e->contains("message") && (*e)["message"].is_string()
                          ? (*e)["message"].get<std::string>()
                          : e->dump();
    rec_.on_error("the server reported an error mid-stream: " + msg);
    return;
  }
  if (auto c = j.find("choices"); c != j.end() && c->is_array()) {
    for (const auto& choice : *c) {
      auto text = choice.find("text");
      if (text != choice.end() && text->is_string() && !text->get_ref<const std::string&>().empty())
        rec_.on_content(t, text->get_ref<const std::string&>());
    }
  }
  if (auto u = j.find("usage"); u != j.end() && u->is_object()) {
    auto count = [&](const char* key) {
      auto v = u->find(key);
      return v != u->end() && v->is_number_integer() ? v->get<int>() : -1;
    };
    rec_.on_usage(count("prompt_tokens"), count("completion_tokens"));
  }
}

}  // namespace herd::bench
