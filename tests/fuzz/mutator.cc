// The edits behind Mutate: generic byte edits plus Cap'n Proto-aware word edits.
#include "tests/fuzz/mutator.h"

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "absl/strings/str_format.h"

namespace sy::fuzz {
namespace {

constexpr size_t kWord = 8;

uint64_t LoadWord(const std::string& s, size_t word) {
  uint64_t v = 0;
  std::memcpy(&v, s.data() + word * kWord, kWord);
  return v;
}

void StoreWord(std::string& s, size_t word, uint64_t v) { std::memcpy(&s[word * kWord], &v, kWord); }

// A Cap'n Proto list pointer (tag 1) at `offset` words with element size code
// `size_code` (0..7) and `count` elements (29 bits).
uint64_t ListPointer(uint32_t offset, uint32_t size_code, uint32_t count) {
  return 1u | (static_cast<uint64_t>(offset & 0x3FFFFFFFu) << 2) | (static_cast<uint64_t>(size_code & 7u) << 32) |
         (static_cast<uint64_t>(count & 0x1FFFFFFFu) << 35);
}

// A struct pointer (tag 0) with data/pointer section sizes chosen to overrun.
uint64_t StructPointer(uint32_t offset, uint16_t data_words, uint16_t pointers) {
  return (static_cast<uint64_t>(offset & 0x3FFFFFFFu) << 2) | (static_cast<uint64_t>(data_words) << 32) |
         (static_cast<uint64_t>(pointers) << 48);
}

uint64_t InterestingWord(FuzzRng& rng) {
  switch (rng.Below(8)) {
    case 0:  // huge list of 8-byte elements
      return ListPointer(static_cast<uint32_t>(rng.Below(4)), 5, 0x1FFFFFFFu - static_cast<uint32_t>(rng.Below(4)));
    case 1:  // huge composite (struct) list
      return ListPointer(static_cast<uint32_t>(rng.Below(4)), 7, static_cast<uint32_t>(rng.Bits()));
    case 2:  // list of bits / bytes with a random count and offset
      return ListPointer(rng.Bits(), static_cast<uint32_t>(rng.Below(8)), rng.Bits());
    case 3:  // struct pointer with large sections
      return StructPointer(static_cast<uint32_t>(rng.Below(8)), static_cast<uint16_t>(rng.Bits()),
                           static_cast<uint16_t>(rng.Bits()));
    case 4:  // far pointer (tag 2) to a random segment and offset
      return 2u | (static_cast<uint64_t>(rng.Bits() & 0x1FFFFFFFu) << 3) | (static_cast<uint64_t>(rng.Below(4)) << 32) |
             (rng.OneIn(2) ? 4u : 0u);
    case 5:  // "other" pointer (tag 3): a capability index
      return 3u | (static_cast<uint64_t>(rng.Bits()) << 32);
    case 6:  // pointer to itself / backwards
      return StructPointer(0x3FFFFFFFu - static_cast<uint32_t>(rng.Below(3)), 1, 1);
    default:
      return rng.Bits64();
  }
}

void EditBytes(std::string& s, FuzzRng& rng) {
  const size_t n = s.size();
  switch (rng.Below(n == 0 ? 1 : 7)) {
    case 0: {  // insert 1..16 random bytes (sometimes a whole word)
      const size_t len = rng.OneIn(2) ? kWord : 1 + rng.Below(16);
      std::string insert(len, '\0');
      for (char& c : insert) c = static_cast<char>(rng.Bits());
      s.insert(rng.Below(n + 1), insert);
      return;
    }
    case 1:  // flip one bit
      s[rng.Below(n)] ^= static_cast<char>(1u << rng.Below(8));
      return;
    case 2: {  // an interesting byte value
      static constexpr unsigned char kValues[] = {0x00, 0xFF, 0x7F, 0x80, 0x01, 0xFE};
      s[rng.Below(n)] = static_cast<char>(kValues[rng.Below(sizeof(kValues))]);
      return;
    }
    case 3:  // truncate, often to a whole number of words
      s.resize(rng.OneIn(2) ? rng.Below(n / kWord + 1) * kWord : rng.Below(n));
      return;
    case 4: {  // delete a range
      const size_t at = rng.Below(n);
      s.erase(at, 1 + rng.Below(std::min<size_t>(n - at, 32)));
      return;
    }
    case 5: {  // duplicate a range in place
      const size_t at = rng.Below(n);
      const std::string copy = s.substr(at, 1 + rng.Below(std::min<size_t>(n - at, 32)));
      s.insert(rng.Below(n + 1), copy);
      return;
    }
    default:  // a random byte
      s[rng.Below(n)] = static_cast<char>(rng.Bits());
      return;
  }
}

void EditWords(std::string& s, FuzzRng& rng) {
  const size_t words = s.size() / kWord;
  if (words == 0) return EditBytes(s, rng);
  switch (rng.Below(4)) {
    case 0: {  // swap two words
      const size_t a = rng.Below(words), b = rng.Below(words);
      const uint64_t wa = LoadWord(s, a);
      StoreWord(s, a, LoadWord(s, b));
      StoreWord(s, b, wa);
      return;
    }
    case 1:  // pointer garbage or a huge list length
      StoreWord(s, rng.Below(words), InterestingWord(rng));
      return;
    case 2: {  // segment table: segment count and first segment size
      uint32_t table[2];
      std::memcpy(table, s.data(), kWord);
      table[rng.Below(2)] = rng.OneIn(2) ? rng.Bits() : table[0] + static_cast<uint32_t>(rng.Below(5)) - 2u;
      std::memcpy(&s[0], table, kWord);
      return;
    }
    default:  // zero a word
      StoreWord(s, rng.Below(words), 0);
      return;
  }
}

}  // namespace

std::string Mutate(std::string bytes, FuzzRng& rng, int max_edits) {
  const int edits = 1 + static_cast<int>(rng.Below(static_cast<uint64_t>(std::max(max_edits, 1))));
  for (int i = 0; i < edits; ++i) {
    if (rng.OneIn(2)) {
      EditWords(bytes, rng);
    } else {
      EditBytes(bytes, rng);
    }
  }
  return bytes;
}

std::string HexDump(absl::string_view bytes, size_t max_bytes) {
  std::string out;
  const size_t shown = std::min(bytes.size(), max_bytes);
  for (size_t line = 0; line < shown; line += 16) {
    absl::StrAppendFormat(&out, "%06x ", line);
    for (size_t i = line; i < std::min(line + 16, shown); ++i) {
      absl::StrAppendFormat(&out, " %02x", static_cast<unsigned char>(bytes[i]));
    }
    out += '\n';
  }
  if (shown < bytes.size()) absl::StrAppendFormat(&out, "... %d more bytes\n", bytes.size() - shown);
  return out;
}

}  // namespace sy::fuzz
