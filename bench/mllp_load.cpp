// mllp_load: an MLLP load generator for any HL7 v2 receiver (adapterd, or a peer to compare with).
//
//   mllp_load HOST PORT N C [--rate R] [--message FILE] [--warmup W] [--prefix P]
//             [--timeout-ms T] [--label L]
//
// Sends N copies of the benchmark ORU^R01 over C connections in original acknowledgment mode
// (MSH-15/16 emptied; one message in flight per connection, the next sent when its ACK is in),
// each with a unique MSH-10 of at most 20 characters: the run prefix (P, default derived from the
// clock and pid, so that reruns against the same store never look like resends), the connection
// and a sequence number. Every ACK must be MSA-1 AA with MSA-2 equal to the control ID sent;
// anything else is counted and printed, and makes the exit status 1.
//
// Without --rate the load is closed-loop: connections take the next message as soon as their
// ACK arrives, and latency runs from send to ACK. With --rate R (messages/s in total) the load is
// open-loop: message j is due at start + j/R, on connection j mod C, and latency runs from that
// due time, not from the actual send. A receiver that stalls therefore pays for every message it
// delayed (no coordinated omission), and the report says which rate was really achieved.
//
// Before the timed run each connection sends W messages (default 200) unmeasured, so that JITs,
// caches and the store's first pages are warm for every receiver alike.
//
// One thread per connection with blocking sockets: simple, and with C <= a few dozen the
// generator costs far less CPU than the receivers it measures. Prints a report, then one
// "RESULT mllp_load k=v ..." line for bench/run.sh.
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <latch>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#ifndef ADAPTER_BENCH_MESSAGE
#define ADAPTER_BENCH_MESSAGE "fixtures/hl7v2/samples/bench_oru_r01_genomics.hl7"
#endif

namespace {

using Clock = std::chrono::steady_clock;

constexpr char kVT = '\x0B';
constexpr char kFS = '\x1C';
constexpr char kCR = '\r';

struct Options {
  std::string host;
  std::string port;
  std::uint64_t n = 0;
  unsigned c = 1;
  double rate = 0;  // messages/s in total; 0: closed loop
  std::string message_file = ADAPTER_BENCH_MESSAGE;
  std::uint64_t warmup = 200;  // per connection
  std::string prefix;
  int timeout_ms = 10000;
  std::string label;
};

int usage() {
  std::fprintf(stderr,
               "usage: mllp_load HOST PORT N C [--rate R] [--message FILE] [--warmup W] "
               "[--prefix P] [--timeout-ms T] [--label L]\n");
  return 2;
}

std::string base36(std::uint64_t n) {
  static constexpr char kDigits[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
  std::string s;
  do {
    s.insert(s.begin(), kDigits[n % 36]);
    n /= 36;
  } while (n > 0);
  return s;
}

// The message as the peer scripts send it: LF (or CRLF) line ends become CR, trailing CRs go.
std::string load_message(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  std::string raw((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::string text;
  text.reserve(raw.size());
  for (std::size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] == '\r' && i + 1 < raw.size() && raw[i + 1] == '\n') continue;
    text.push_back(raw[i] == '\n' ? '\r' : raw[i]);
  }
  while (!text.empty() && text.back() == '\r') text.pop_back();
  return text;
}

// The message split around MSH-10, so that each send only splices in its control ID.
struct Template {
  std::string head;  // VT + text up to MSH-10
  std::string tail;  // text after MSH-10 + FS CR

  std::string frame(std::string_view control_id) const {
    std::string out;
    out.reserve(head.size() + control_id.size() + tail.size());
    out += head;
    out += control_id;
    out += tail;
    return out;
  }
};

// Splits the MSH segment on its field separator (piece 0 is "MSH", piece k is MSH-(k+1)), sets
// original acknowledgment mode and cuts the message around MSH-10.
std::optional<Template> make_template(const std::string& text) {
  if (text.size() < 8 || text.compare(0, 3, "MSH") != 0) return std::nullopt;
  const char fs = text[3];
  const std::size_t msh_end = std::min(text.find(kCR), text.size());
  std::vector<std::string> pieces;
  for (std::size_t pos = 0;;) {
    const std::size_t end = std::min(text.find(fs, pos), msh_end);
    pieces.push_back(text.substr(pos, end - pos));
    if (end == msh_end) break;
    pos = end + 1;
  }
  if (pieces.size() < 12) return std::nullopt;  // up to MSH-12 (version) is required
  // Original acknowledgment mode is the absence of MSH-15/16; the benchmark message declares
  // enhanced mode (AL/NE), to which a conforming receiver answers CA, not AA.
  for (const std::size_t k : {std::size_t{14}, std::size_t{15}}) {
    if (k < pieces.size()) pieces[k].clear();
  }
  Template t;
  t.head.push_back(kVT);
  for (std::size_t k = 0; k < 9; ++k) t.head += pieces[k] + fs;
  for (std::size_t k = 10; k < pieces.size(); ++k) t.tail += fs + pieces[k];
  t.tail += text.substr(msh_end);
  t.tail += kFS;
  t.tail += kCR;
  return t;
}

// MSA-1 and MSA-2 of an ACK (unframed); nullopt when there is no MSA segment.
struct Msa {
  std::string_view code;
  std::string_view control_id;
};

std::optional<Msa> read_msa(std::string_view ack) {
  if (ack.size() < 4 || ack.substr(0, 3) != "MSH") return std::nullopt;
  const char fs = ack[3];
  std::size_t pos = 0;
  while (pos < ack.size()) {
    std::size_t end = ack.find_first_of("\r\n", pos);
    if (end == std::string_view::npos) end = ack.size();
    const std::string_view seg = ack.substr(pos, end - pos);
    if (seg.size() > 3 && seg.substr(0, 3) == "MSA" && seg[3] == fs) {
      std::string_view rest = seg.substr(4);
      const std::size_t f1 = rest.find(fs);
      Msa msa;
      msa.code = rest.substr(0, f1);
      if (f1 != std::string_view::npos) {
        rest = rest.substr(f1 + 1);
        msa.control_id = rest.substr(0, rest.find(fs));
      }
      return msa;
    }
    pos = end + 1;
  }
  return std::nullopt;
}

// Failures shared by all connections: counted, and the first few kept for the report.
class Failures {
 public:
  void add(std::string what) {
    count_.fetch_add(1, std::memory_order_relaxed);
    std::lock_guard lock(mu_);
    if (examples_.size() < 10) examples_.push_back(std::move(what));
  }
  std::uint64_t count() const { return count_.load(std::memory_order_relaxed); }
  std::vector<std::string> examples() const {
    std::lock_guard lock(mu_);
    return examples_;
  }

 private:
  std::atomic<std::uint64_t> count_{0};
  mutable std::mutex mu_;  // guards examples_
  std::vector<std::string> examples_;
};

std::string printable(std::string_view s) {
  std::string out;
  for (char ch : s.substr(0, 300)) out += (ch == '\r' || ch == '\n') ? '|' : ch;
  if (out.size() < s.size()) out += "...";
  return out;
}

// One blocking MLLP client connection.
class Connection {
 public:
  Connection() = default;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection() {
    if (fd_ >= 0) ::close(fd_);
  }

  // Returns an error text, or empty on success.
  std::string open(const Options& o) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    if (const int rc = ::getaddrinfo(o.host.c_str(), o.port.c_str(), &hints, &res); rc != 0) {
      return std::string("resolve: ") + ::gai_strerror(rc);
    }
    std::string error = "connect: no address";
    for (addrinfo* a = res; a != nullptr; a = a->ai_next) {
      const int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
      if (fd < 0) continue;
      if (::connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
        fd_ = fd;
        error.clear();
        break;
      }
      error = std::string("connect: ") + std::strerror(errno);
      ::close(fd);
    }
    ::freeaddrinfo(res);
    if (fd_ < 0) return error;
    // Each message is one write answered by one ACK: Nagle would only add delay.
    const int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    // A receiver that never answers must fail the run, not hang it.
    timeval tv{};
    tv.tv_sec = o.timeout_ms / 1000;
    tv.tv_usec = (o.timeout_ms % 1000) * 1000;
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    return {};
  }

  std::string send_all(std::string_view bytes) {
    while (!bytes.empty()) {
      const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) continue;
        return std::string("send: ") + std::strerror(errno);
      }
      bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    return {};
  }

  // Reads one frame into `payload` (without VT/FS/CR). Returns an error text, or empty.
  std::string read_frame(std::string& payload) {
    for (;;) {
      const std::size_t start = buf_.find(kVT);
      if (start == std::string::npos) {
        buf_.clear();  // bytes outside a frame carry nothing
      } else {
        // FS and the CR after it: wait for both, so the CR is not taken for the next frame.
        const std::size_t end = buf_.find(kFS, start + 1);
        if (end != std::string::npos && end + 1 < buf_.size()) {
          payload.assign(buf_, start + 1, end - start - 1);
          buf_.erase(0, end + (buf_[end + 1] == kCR ? 2 : 1));
          return {};
        }
      }
      char chunk[16 * 1024];
      const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
      if (n == 0) return "connection closed by the receiver";
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return "no ACK before the timeout";
        return std::string("recv: ") + std::strerror(errno);
      }
      buf_.append(chunk, static_cast<std::size_t>(n));
    }
  }

 private:
  int fd_ = -1;
  std::string buf_;  // received bytes not yet returned as a frame
};

struct Worker {
  std::vector<std::int64_t> latency_ns;
  std::uint64_t ok = 0;
  std::uint64_t sent = 0;
  Clock::time_point last_ack{};
};

struct Run {
  const Options& o;
  const Template& tmpl;
  Failures failures;
  std::atomic<std::uint64_t> next{0};  // closed loop: the next message to send
  std::latch ready;
  std::latch go;
  Clock::time_point start{};  // written before `go` opens, read after

  Run(const Options& opts, const Template& t)
      : o(opts), tmpl(t), ready(static_cast<std::ptrdiff_t>(opts.c)), go(1) {}

  // Sends one message and checks its ACK. Returns false when the connection is unusable.
  bool exchange(Connection& conn, const std::string& control_id, bool* accepted) {
    *accepted = false;
    if (std::string e = conn.send_all(tmpl.frame(control_id)); !e.empty()) {
      failures.add(control_id + ": " + e);
      return false;
    }
    std::string ack;
    if (std::string e = conn.read_frame(ack); !e.empty()) {
      failures.add(control_id + ": " + e);
      return false;
    }
    const std::optional<Msa> msa = read_msa(ack);
    if (!msa || msa->code != "AA" || msa->control_id != control_id) {
      failures.add(control_id + ": wrong ACK: " + printable(ack));
      return true;
    }
    *accepted = true;
    return true;
  }

  void work(unsigned index, Worker& w) {
    Connection conn;
    const std::string conn_id = base36(index);
    bool usable = true;
    if (std::string e = conn.open(o); !e.empty()) {
      failures.add("connection " + conn_id + ": " + e);
      usable = false;
    }
    for (std::uint64_t i = 0; usable && i < o.warmup; ++i) {
      bool accepted = false;
      usable = exchange(conn, o.prefix + "-w" + conn_id + "-" + base36(i), &accepted);
    }
    ready.count_down();
    go.wait();
    if (!usable) return;

    const bool paced = o.rate > 0;
    std::uint64_t k = 0;  // paced: this connection's k-th message is message index + k*C
    for (;;) {
      std::uint64_t j = 0;
      if (paced) {
        j = index + k * o.c;
        ++k;
      } else {
        j = next.fetch_add(1, std::memory_order_relaxed);
      }
      if (j >= o.n) break;
      Clock::time_point t0;
      if (paced) {
        t0 = start + std::chrono::duration_cast<Clock::duration>(
                         std::chrono::duration<double>(static_cast<double>(j) / o.rate));
        std::this_thread::sleep_until(t0);  // late already: send at once, latency keeps the debt
      } else {
        t0 = Clock::now();
      }
      bool accepted = false;
      ++w.sent;
      const bool still_usable =
          exchange(conn, o.prefix + "-" + conn_id + "-" + base36(j), &accepted);
      const auto t1 = Clock::now();
      if (accepted) {
        ++w.ok;
        w.latency_ns.push_back(
            std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count());
      }
      w.last_ack = t1;
      if (!still_usable) break;
    }
  }
};

double quantile_ms(const std::vector<std::int64_t>& sorted, double q) {
  if (sorted.empty()) return NAN;
  // Nearest rank: the smallest value with at least q of the samples at or below it.
  auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(sorted.size())));
  rank = std::clamp<std::size_t>(rank, 1, sorted.size());
  return static_cast<double>(sorted[rank - 1]) / 1e6;
}

std::optional<Options> parse_args(int argc, char** argv) {
  if (argc < 5) return std::nullopt;
  Options o;
  o.host = argv[1];
  o.port = argv[2];
  char* end = nullptr;
  o.n = std::strtoull(argv[3], &end, 10);
  if (*end != '\0' || o.n == 0) return std::nullopt;
  const unsigned long c = std::strtoul(argv[4], &end, 10);
  if (*end != '\0' || c == 0 || c > 4096) return std::nullopt;
  o.c = static_cast<unsigned>(c);
  for (int i = 5; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (i + 1 >= argc) return std::nullopt;
    const char* v = argv[++i];
    if (a == "--rate") {
      o.rate = std::strtod(v, &end);
      if (*end != '\0' || !(o.rate > 0)) return std::nullopt;
    } else if (a == "--message") {
      o.message_file = v;
    } else if (a == "--warmup") {
      o.warmup = std::strtoull(v, &end, 10);
      if (*end != '\0') return std::nullopt;
    } else if (a == "--prefix") {
      o.prefix = v;
    } else if (a == "--timeout-ms") {
      o.timeout_ms = std::atoi(v);
      if (o.timeout_ms <= 0) return std::nullopt;
    } else if (a == "--label") {
      o.label = v;
    } else {
      return std::nullopt;
    }
  }
  if (o.prefix.empty()) {
    // Seconds since the epoch and the pid: distinct across reruns, and short enough that
    // prefix + connection + sequence stays within MSH-10's 20 characters.
    const auto secs = std::chrono::duration_cast<std::chrono::seconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
    o.prefix = base36(static_cast<std::uint64_t>(secs)) +
               base36(static_cast<std::uint64_t>(::getpid()) % 1296);
  }
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  const std::optional<Options> parsed = parse_args(argc, argv);
  if (!parsed) return usage();
  const Options& o = *parsed;
  const std::string text = load_message(o.message_file);
  const std::optional<Template> tmpl = make_template(text);
  if (!tmpl) {
    std::fprintf(stderr, "mllp_load: %s is not an HL7 v2 message with an MSH-10\n",
                 o.message_file.c_str());
    return 2;
  }

  Run run(o, *tmpl);
  std::vector<Worker> workers(o.c);
  for (auto& w : workers) w.latency_ns.reserve(o.n / o.c + 1);
  std::vector<std::thread> threads;
  threads.reserve(o.c);
  for (unsigned i = 0; i < o.c; ++i) {
    threads.emplace_back([&run, &workers, i] { run.work(i, workers[i]); });
  }
  run.ready.wait();
  const std::uint64_t warmup_failures = run.failures.count();
  // A little ahead, so that paced connections do not all start late.
  run.start = Clock::now() + std::chrono::milliseconds(1);
  run.go.count_down();
  for (auto& t : threads) t.join();

  std::vector<std::int64_t> lat;
  std::uint64_t ok = 0;
  std::uint64_t sent = 0;
  Clock::time_point last = run.start;
  for (const auto& w : workers) {
    lat.insert(lat.end(), w.latency_ns.begin(), w.latency_ns.end());
    ok += w.ok;
    sent += w.sent;
    last = std::max(last, w.last_ack);
  }
  std::sort(lat.begin(), lat.end());
  // The generator's own CPU, warm-up included: on a small machine it competes with the receiver,
  // so the report says how much it took.
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  const double client_cpu_s = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                              static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
  const double client_cpu_us_per_msg =
      client_cpu_s * 1e6 / static_cast<double>(sent + o.warmup * o.c);
  const double secs = std::chrono::duration<double>(last - run.start).count();
  const double throughput = secs > 0 ? static_cast<double>(ok) / secs : 0;
  const std::uint64_t errors = run.failures.count() + (o.n - sent);

  // Payload size of a typical message: the frame without VT, FS and CR.
  const std::size_t bytes = tmpl->frame(o.prefix + "-0-0").size() - 3;
  std::printf(
      "mllp_load%s%s: %s:%s, %llu x %zu-byte ORU over %u connection(s), %s, "
      "MSH-10 prefix %s, warm-up %llu/connection\n",
      o.label.empty() ? "" : " ", o.label.c_str(), o.host.c_str(), o.port.c_str(),
      static_cast<unsigned long long>(o.n), bytes, o.c, o.rate > 0 ? "open loop" : "closed loop",
      o.prefix.c_str(), static_cast<unsigned long long>(o.warmup));
  std::printf("  %llu sent, %llu AA with the right MSA-2, %llu errors (%llu during warm-up)\n",
              static_cast<unsigned long long>(sent), static_cast<unsigned long long>(ok),
              static_cast<unsigned long long>(errors),
              static_cast<unsigned long long>(warmup_failures));
  std::printf("  %.0f msg/s over %.2f s; this client used %.1f us of CPU per message\n", throughput,
              secs, client_cpu_us_per_msg);
  if (o.rate > 0) {
    std::printf("  offered %.0f msg/s, achieved %.1f msg/s\n", o.rate, throughput);
  }
  std::printf(
      "  ACK latency (%s): p50 %.3f ms, p90 %.3f ms, p99 %.3f ms, p99.9 %.3f ms, "
      "max %.3f ms\n",
      o.rate > 0 ? "from the scheduled send time" : "from send", quantile_ms(lat, 0.5),
      quantile_ms(lat, 0.9), quantile_ms(lat, 0.99), quantile_ms(lat, 0.999),
      quantile_ms(lat, 1.0));
  for (const std::string& e : run.failures.examples()) std::printf("  FAILED %s\n", e.c_str());
  std::printf(
      "RESULT mllp_load label=%s n=%llu c=%u rate=%.0f ok=%llu errors=%llu secs=%.3f "
      "msgs_per_s=%.1f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f p999_ms=%.3f max_ms=%.3f "
      "client_cpu_us_per_msg=%.1f\n",
      o.label.empty() ? "-" : o.label.c_str(), static_cast<unsigned long long>(o.n), o.c, o.rate,
      static_cast<unsigned long long>(ok), static_cast<unsigned long long>(errors), secs,
      throughput, quantile_ms(lat, 0.5), quantile_ms(lat, 0.9), quantile_ms(lat, 0.99),
      quantile_ms(lat, 0.999), quantile_ms(lat, 1.0), client_cpu_us_per_msg);
  return errors == 0 ? 0 : 1;
}
