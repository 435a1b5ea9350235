// leaky-demo: a small "request handler" loop with one real leak and one bounded cache.
// Each request parses a header into a Session object; sessions of failed requests are
// never released (the leak).  A lookup cache keeps at most 64 entries (not a leak).
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

struct Session {
  char user[64];
  std::vector<char> buffer;
};

// Bounded: at most 64 entries.  Allocated once and never destroyed (a common singleton
// pattern), so it is still there when the program exits.
static std::map<int, std::string>& g_cache = *new std::map<int, std::string>;

__attribute__((noinline)) Session* parse_request(int id) {
  auto* s = new Session;
  std::snprintf(s->user, sizeof s->user, "user-%d", id);
  s->buffer.resize(1024);
  return s;
}

__attribute__((noinline)) void remember(int id) {
  g_cache[id % 64] = std::string(200, static_cast<char>('a' + id % 26));
}

__attribute__((noinline)) char* make_temp_buffer(size_t n) {
  return static_cast<char*>(std::malloc(n));
}

__attribute__((noinline)) void handle_request(int id) {
  Session* s = parse_request(id);
  remember(id);
  char* tmp = make_temp_buffer(4096);
  std::memset(tmp, 0, 4096);
  std::free(tmp);
  bool failed = (id % 4 == 0);
  if (!failed) delete s;  // BUG: failed requests leak their session
}

int main(int argc, char** argv) {
  int seconds = argc > 1 ? std::atoi(argv[1]) : 5;
  int per_sec = 200;
  for (int i = 0; i < seconds * per_sec; i++) {
    handle_request(i);
    usleep(1000000 / per_sec);
  }
  return 0;
}
