// A deliberately naive SentencePiece-BPE encoder, written from the algorithm's
// description rather than from spm.cpp, to cross-check it: repeatedly merge
// the adjacent pair whose concatenation is a piece with the highest score
// (leftmost on ties), then map each segment to its id or to byte tokens.
// O(n^2) per merge round; only for short test strings.
#pragma once

#include <cstdint>
#include <cstdio>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/tokenizer/spm.h"

namespace yuan::testing {

class ReferenceSpm {
 public:
  explicit ReferenceSpm(const SpmVocab& vocab) : vocab_(vocab) {
    for (size_t i = 0; i < vocab.tokens.size(); ++i)
      ids_[vocab.tokens[i]] = static_cast<int32_t>(i);
  }

  // Encodes one raw span (no special-token handling, no BOS).
  std::vector<int32_t> Encode(std::string_view raw, bool space_prefix) const {
    std::string text = space_prefix ? "\xE2\x96\x81" : "";
    for (char c : raw) text += c == ' ' ? std::string("\xE2\x96\x81") : std::string(1, c);

    std::vector<std::string> segs;
    for (size_t i = 0; i < text.size();) {
      const size_t len = CharLen(text, i);
      segs.push_back(text.substr(i, len));
      i += len;
    }

    while (true) {
      int best = -1;
      float best_score = 0;
      for (size_t i = 0; i + 1 < segs.size(); ++i) {
        auto it = ids_.find(segs[i] + segs[i + 1]);
        if (it == ids_.end()) continue;
        const float score = Score(it->second);
        if (best < 0 || score > best_score) {  // strict: the leftmost wins ties
          best = static_cast<int>(i);
          best_score = score;
        }
      }
      if (best < 0) break;
      segs[best] += segs[best + 1];
      segs.erase(segs.begin() + best + 1);
    }

    std::vector<int32_t> out;
    for (const std::string& s : segs) {
      auto it = ids_.find(s);
      if (it != ids_.end()) {
        out.push_back(it->second);
        continue;
      }
      for (unsigned char c : s) {
        char buf[8];
        std::snprintf(buf, sizeof buf, "<0x%02X>", c);
        auto b = ids_.find(buf);
        if (b == ids_.end()) b = ids_.find(std::string(1, static_cast<char>(c)));
        if (b != ids_.end()) {
          out.push_back(b->second);
        } else if (vocab_.unk >= 0) {
          out.push_back(vocab_.unk);
        }
      }
    }
    return out;
  }

 private:
  float Score(int32_t id) const { return vocab_.scores.empty() ? 0.0f : vocab_.scores[id]; }

  // A UTF-8 sequence when its lead byte announces n bytes and n-1
  // continuation bytes follow; any other byte is a character by itself.
  static size_t CharLen(const std::string& s, size_t i) {
    const unsigned char b = static_cast<unsigned char>(s[i]);
    size_t n = 1;
    if (b >= 0xF0) {
      n = 4;
    } else if (b >= 0xE0) {
      n = 3;
    } else if (b >= 0xC0) {
      n = 2;
    }
    if (i + n > s.size()) return 1;
    for (size_t k = 1; k < n; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) >> 6) != 2) return 1;
    }
    return n;
  }

  const SpmVocab& vocab_;
  std::map<std::string, int32_t> ids_;
};

}  // namespace yuan::testing
