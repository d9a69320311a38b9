// adapterd: the genomics integration adapter daemon and its command-line tools.
//
//   adapterd serve [--config FILE]   run the daemon (embedded default configuration without FILE)
//   adapterd check [--config FILE]   validate the configuration and every mapping: exit 0 or 1
//   adapterd translate [--config FILE] [--explain] [--supersedes] FILE...
//                                    print the FHIR output for each message (issues on stderr);
//                                    --supersedes: as the daemon maps a later message about a
//                                    report already sent ($source.supersedes)
//   adapterd test-mappings [--config FILE] [--update] FOLDER
//                                    run golden cases (FOLDER/<case>/input.hl7 + expected.json)
//   adapterd replay [--config FILE] (--failed | MESSAGE_ID)
//                                    map stored messages again with the current templates
//   adapterd dead-letters [--config FILE] (list | show ID | retry (ID | --all) |
//                                          discard ID --reason TEXT)
//                                    deliveries a destination refused or that ran out of retries
//   adapterd functions               list the functions templates may call
//   adapterd errors                  print the error table (ACK code, HL7 0357, HTTP status)
//   adapterd version
//
// This is the only file where concrete types meet: the SQLite store, the Asio listeners and the
// intake that joins them, the mapping worker, and one delivery worker per destination with its
// HTTP client.
#include <utility>  // before Asio: GCC 12 + Boost needs std::exchange declared

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/thread_pool.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "app/admin_api.h"
#include "app/config.h"
#include "app/dead_letters.h"
#include "app/delivery_worker.h"
#include "app/drop_folder.h"
#include "app/feed_intake.h"
#include "app/intake.h"
#include "app/mapping_worker.h"
#include "app/metrics.h"
#include "app/reload.h"
#include "app/retention.h"
#include "app/stats.h"
#include "app/translate.h"
#include "common/log.h"
#include "net/admin_http.h"
#include "net/fhir_http_client.h"
#include "net/http_ingress.h"
#include "net/mllp_listener.h"
#include "store/sqlite/sqlite_store.h"

namespace {

using namespace adapter;

constexpr const char* kVersion = "0.1.0";

int usage() {
  std::fprintf(
      stderr,
      "usage: adapterd serve [--config FILE]\n"
      "       adapterd check [--config FILE]\n"
      "       adapterd translate [--config FILE] [--explain] [--supersedes] FILE...\n"
      "       adapterd test-mappings [--config FILE] [--update] FOLDER\n"
      "       adapterd replay [--config FILE] [--dry-run] (--failed | MESSAGE_ID)\n"
      "       adapterd messages [--config FILE] (list [--state S] [--mapping M] [--control-id X]\n"
      "                         [--source N] [--sender A] [--from T] [--until T] [--limit N] |\n"
      "                         show ID)\n"
      "       adapterd dead-letters [--config FILE] (list | show ID | retry (ID | --all) |\n"
      "                                              discard ID --reason TEXT)\n"
      "       adapterd functions\n"
      "       adapterd errors\n"
      "       adapterd version\n");
  return 2;
}

Result<app::Config, app::ConfigErrors> load(const std::vector<std::string>& args) {
  for (std::size_t i = 0; i + 1 < args.size(); ++i) {
    if (args[i] == "--config") return app::load_config_file(args[i + 1]);
  }
  return app::parse_config(app::embedded_default_config(), "<embedded default>");
}

// One MLLP listener with everything it owns.
struct Feed {
  app::MllpStats* stats = nullptr;  // in mllp_stats (run()), which outlives the io_context
  std::unique_ptr<app::Intake> intake;
  std::unique_ptr<net::MllpListener> listener;
  std::string name;
};

// Reloads and says what happened, one log line per error (each located).
app::ReloadOutcome reload_and_log(app::Reloader& reloader, const char* trigger) {
  app::ReloadOutcome r = reloader.reload();
  if (r.applied) {
    log::info("mapping.reloaded", {{"trigger", trigger},
                                   {"previous_template_set", r.previous_set},
                                   {"template_set", r.current_set}});
    for (const std::string& s : r.restart_needed) {
      log::warn("config.restart_needed",
                {{"section", s}, {"reason", "changed since start; only mappings reload"}});
    }
  } else {
    for (const Error& e : r.errors) {
      log::error("mapping.reload_failed",
                 {{"trigger", trigger}, {"where", e.where}, {"error", e.message}});
    }
    log::warn("mapping.reload_refused",
              {{"trigger", trigger}, {"errors", r.errors.size()}, {"template_set", r.current_set}});
  }
  return r;
}

std::optional<std::string> config_path(const std::vector<std::string>& args) {
  for (std::size_t i = 0; i + 1 < args.size(); ++i) {
    if (args[i] == "--config") return args[i + 1];
  }
  return std::nullopt;
}

// The configuration's text as it was at start, so that a reload can tell what changed.
std::string config_text(const std::optional<std::string>& path) {
  if (!path) return std::string(app::embedded_default_config());
  std::ifstream in(*path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

int serve(const app::Config& config, const std::optional<std::string>& path) {
  log::configure({config.log.level, config.log.include_phi, 2});
  std::signal(SIGPIPE, SIG_IGN);
  ::umask(027);  // the store holds patient data: no world-readable files

  store::SqliteStoreOptions store_options;
  store_options.path = config.store.path;
  store_options.max_batch = config.store.max_batch;
  auto store = store::SqliteStore::open(store_options);
  if (!store) {
    log::error("adapterd.store_open_failed",
               {{"path", config.store.path}, {"error", store.error().message}});
    return 1;
  }

  app::RetentionWorker retention(**store, config.retention);

  // Mappings: loaded once at startup (a broken set stops the daemon here, with every error
  // located). Without a mappings folder the daemon still receives, stores and acknowledges;
  // messages wait, unmapped, until it runs with one.
  std::unique_ptr<app::MappingWorker> mapping_worker;
  // The mappings in use, replaced by a reload; also routes XML at HTTP intake (document ids).
  std::shared_ptr<app::MapperHolder> http_mapper;
  std::unique_ptr<app::Reloader> reloader;
  if (std::filesystem::is_directory(config.mapping.directory)) {
    auto set = app::load_mappings(config.mapping);
    if (!set) {
      for (const auto& e : set.error()) {
        log::error("mapping.load_failed", {{"where", e.where}, {"error", e.message}});
      }
      return 1;
    }
    if (const auto filters = app::check_destination_filters(config.destinations, **set);
        !filters.empty()) {
      for (const auto& e : filters) {
        log::error("config.invalid", {{"where", e.where}, {"error", e.message}});
      }
      return 1;
    }
    http_mapper = std::make_shared<app::MapperHolder>(
        std::make_shared<const app::Mapper>(*set, config.mapping));
    reloader =
        std::make_unique<app::Reloader>(path, config_text(path), *http_mapper, config.destinations);
    log::info("mapping.loaded",
              {{"directory", config.mapping.directory}, {"template_set", (*set)->version}});
    std::vector<app::MappingWorker::Route> destinations;
    for (const auto& d : config.destinations) destinations.emplace_back(d.name, d.filter);
    mapping_worker =
        std::make_unique<app::MappingWorker>(**store, http_mapper, std::move(destinations));
  } else {
    log::warn("mapping.disabled", {{"directory", config.mapping.directory},
                                   {"reason", "no such folder: messages are stored, not mapped"}});
  }

  // Before the io_context: sessions it still holds when it is destroyed count themselves out
  // there (HTTP and MLLP alike: a session in flight at SIGTERM is destroyed with the context).
  // A deque, so that each listener's stats stay where they are as more are added.
  app::HttpStats http_stats;
  std::deque<app::MllpStats> mllp_stats;
  boost::asio::io_context ioc(config.io_threads);
  // Delivery: one worker per destination, its HTTP client on the shared io_context. Declared
  // before the listeners, so destroyed after the store has drained their callbacks (see below).
  struct Destination {
    std::shared_ptr<net::FhirHttpClient> client;
    std::unique_ptr<app::DeliveryWorker> worker;
  };
  std::vector<Destination> destinations;
  for (const auto& dc : config.destinations) {
    auto client = net::FhirHttpClient::create(ioc, dc);
    if (!client) {
      log::error("delivery.start_failed",
                 {{"destination", dc.name}, {"error", client.error().to_string()}});
      return 1;
    }
    Destination d;
    d.client = std::move(*client);
    d.worker = std::make_unique<app::DeliveryWorker>(**store, d.client, dc);
    log::info("delivery.started", {{"destination", dc.name},
                                   {"endpoint", d.client->describe()},
                                   {"auth", app::to_string(dc.auth.kind)},
                                   {"max_in_flight", dc.max_in_flight}});
    destinations.push_back(std::move(d));
  }
  if (config.destinations.empty()) {
    log::warn("delivery.disabled",
              {{"reason", "no destinations configured: mapped Bundles are kept, not sent"}});
  }
  std::vector<std::unique_ptr<Feed>> feeds;
  for (const auto& lc : config.mllp) {
    auto feed = std::make_unique<Feed>();
    feed->name = lc.name;
    feed->stats = &mllp_stats.emplace_back();
    feed->intake = std::make_unique<app::Intake>(
        app::ListenerPolicy{lc.name, lc.accept_message_types, lc.default_charset, config.instance},
        **store, *feed->stats);
    auto listener = net::MllpListener::start(ioc, lc, *feed->intake, *feed->stats);
    if (!listener) {
      log::error("listener.start_failed",
                 {{"listener", lc.name}, {"error", listener.error().message}});
      return 1;
    }
    feed->listener = std::move(*listener);
    log::info("listener.started", {{"listener", lc.name},
                                   {"protocol", "mllp"},
                                   {"bind", lc.bind},
                                   {"port", static_cast<unsigned>(feed->listener->port())},
                                   {"tls", lc.tls.has_value()},
                                   {"mutual_tls", lc.tls && !lc.tls->client_ca_file.empty()}});
    feeds.push_back(std::move(feed));
  }

  // The HTTP listener for lab feeds (XML reports and HL7 v2 over HTTP).
  std::unique_ptr<app::FeedIntake> feed_intake;
  std::unique_ptr<net::HttpIngress> http_ingress;
  if (config.http) {
    feed_intake = std::make_unique<app::FeedIntake>(*config.http, config.instance, **store, **store,
                                                    http_mapper, http_stats);
    auto started = net::HttpIngress::start(ioc, *config.http, *feed_intake, http_stats);
    if (!started) {
      log::error("listener.start_failed",
                 {{"listener", config.http->name}, {"error", started.error().message}});
      return 1;
    }
    http_ingress = std::move(*started);
    log::info("listener.started", {{"listener", config.http->name},
                                   {"protocol", "http"},
                                   {"bind", config.http->bind},
                                   {"port", static_cast<unsigned>(http_ingress->port())},
                                   {"tls", config.http->tls.has_value()},
                                   {"feeds", config.http->feeds.size()}});
  }

  // Drop folders: the same intake over one source per folder.
  app::HttpStats folder_stats;
  const app::HttpListenerConfig folder_sources = app::drop_folder_sources(config.folders);
  std::unique_ptr<app::FeedIntake> folder_intake;
  std::unique_ptr<app::DropFolders> drop_folders;
  if (!config.folders.empty()) {
    folder_intake = std::make_unique<app::FeedIntake>(folder_sources, config.instance, **store,
                                                      **store, http_mapper, folder_stats);
    drop_folders = std::make_unique<app::DropFolders>(config.folders, *folder_intake);
    if (auto st = drop_folders->prepare(); !st) {
      log::error("folder.start_failed", {{"error", st.error().message}});
      return 1;
    }
    for (const auto& f : config.folders) {
      log::info("folder.started", {{"folder", f.name}, {"path", f.path}});
    }
  }

  std::atomic<bool> draining{false};
  // The replay previews map with the set in use at the moment they are asked for.
  app::AdminApi admin_api(**store, **store, [&http_mapper]() -> std::shared_ptr<const app::Mapper> {
    return http_mapper ? http_mapper->current() : nullptr;
  });
  std::unique_ptr<net::AdminHttp> admin;
  if (config.admin.enabled) {
    net::AdminHttp::Handlers handlers;
    handlers.metrics = [&feeds, &destinations, &store, &feed_intake, &config, &http_stats,
                        &folder_intake, &folder_stats, &retention, &mapping_worker] {
      app::MetricsSources sources;
      for (const auto& f : feeds) sources.hl7.emplace_back(f->name, f->stats);
      for (const app::FeedIntake* intake : {feed_intake.get(), folder_intake.get()}) {
        if (intake == nullptr) continue;
        intake->for_each_hl7_stats([&sources](const std::string& name, const app::MllpStats& s) {
          sources.hl7.emplace_back(name, &s);
        });
      }
      if (feed_intake) sources.http.emplace_back(config.http->name, &http_stats);
      if (folder_intake) sources.http.emplace_back("folders", &folder_stats);
      for (const auto& d : destinations) sources.destinations.push_back(d.worker.get());
      sources.mapping = mapping_worker.get();
      sources.inbox = &**store;
      sources.outbox = &**store;
      sources.retention = &retention;
      sources.store_path = config.store.path;
      sources.now_us = app::now_us();
      return app::render_metrics(sources);
    };
    // Ready: the store answers and its folder is writable, not stopping, no circuit open (an
    // open circuit means the EHR is failing: a load balancer should send work elsewhere).
    handlers.ready = [&store, &destinations, &draining, &config] {
      std::string reasons;
      if (draining.load()) reasons += "stopping\n";
      if (!(*store)->count(std::nullopt)) reasons += "store: cannot be read\n";
      const std::filesystem::path folder =
          std::filesystem::absolute(config.store.path).parent_path();
      if (::access(folder.c_str(), W_OK) != 0) reasons += "store: folder not writable\n";
      for (const auto& d : destinations) {
        const app::DestinationSnapshot snap = d.worker->snapshot();
        if (snap.circuit == delivery::CircuitBreaker::State::open) {
          reasons += "destination " + snap.name + ": circuit open after " +
                     std::to_string(snap.consecutive_failures) + " failures\n";
        }
      }
      net::AdminHttp::Answer a;
      a.content_type = "text/plain";
      a.status = reasons.empty() ? 200 : 503;
      a.body = reasons.empty() ? "ready\n" : reasons;
      return a;
    };
    handlers.reload = [&reloader] {
      net::AdminHttp::Answer a;
      if (!reloader) {
        a.status = 409;
        a.body =
            "{\"applied\":false,\"errors\":[{\"where\":\"mapping.directory\",\"message\":"
            "\"no mappings were loaded at start: restart to load them\"}]}\n";
        return a;
      }
      const app::ReloadOutcome r = reload_and_log(*reloader, "admin");
      a.status = r.applied ? 200 : 422;
      a.body = r.to_json();
      return a;
    };
    handlers.api = [&admin_api](std::string_view method,
                                std::string_view target) -> std::optional<net::AdminHttp::Answer> {
      auto r = admin_api.handle(method, target);
      if (!r) return std::nullopt;
      net::AdminHttp::Answer a;
      a.status = r->status;
      a.body = std::move(r->body);
      return a;
    };
    auto started = net::AdminHttp::start(config.admin, std::move(handlers));
    if (!started) {
      log::error("admin.start_failed", {{"error", started.error().message}});
      return 1;
    }
    admin = std::move(*started);
    log::info("admin.started",
              {{"bind", config.admin.bind}, {"port", static_cast<unsigned>(admin->port())}});
  }

  // A signal stops the listeners at once; the main thread then drains the workers.
  std::mutex stop_mu;
  std::condition_variable stop_cv;
  bool stop_requested = false;
  // SIGHUP reloads the mappings (and the mapping configuration), as POST /reload does: on a
  // thread of its own, as the admin endpoint does, not on the I/O thread that took the signal
  // (loading a set takes milliseconds to seconds, during which that thread would answer no one).
  boost::asio::thread_pool reloads(1);
  boost::asio::signal_set hangups(ioc, SIGHUP);
  std::function<void()> wait_for_hangup = [&] {
    hangups.async_wait([&](const boost::system::error_code& ec, int) {
      if (ec) return;
      if (reloader) {
        boost::asio::post(reloads, [&] { (void)reload_and_log(*reloader, "SIGHUP"); });
      } else {
        log::warn("mapping.reload_failed",
                  {{"trigger", "SIGHUP"}, {"error", "no mappings were loaded at start"}});
      }
      wait_for_hangup();
    });
  };
  wait_for_hangup();
  boost::asio::signal_set signals(ioc, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int signo) {
    if (ec) return;
    log::info("adapterd.stopping", {{"signal", signo}});
    draining = true;
    for (auto& f : feeds) f->listener->stop();
    if (http_ingress) http_ingress->stop();
    if (admin) admin->stop();
    boost::system::error_code ignored;
    hangups.cancel(ignored);
    {
      std::lock_guard lock(stop_mu);
      stop_requested = true;
    }
    stop_cv.notify_all();
  });

  // Each step wakes the next as soon as it has work, instead of waiting for its poll: intake
  // -> mapping -> delivery.
  if (mapping_worker) {
    mapping_worker->set_on_mapped([&destinations] {
      for (auto& d : destinations) d.worker->notify();
    });
    for (auto& f : feeds) f->intake->set_on_stored([w = mapping_worker.get()] { w->notify(); });
    if (feed_intake) feed_intake->set_on_stored([w = mapping_worker.get()] { w->notify(); });
    if (folder_intake) folder_intake->set_on_stored([w = mapping_worker.get()] { w->notify(); });
    mapping_worker->start();
  }
  for (auto& d : destinations) d.worker->start();
  if (drop_folders) drop_folders->start();
  retention.start();
  log::info("adapterd.ready", {{"version", kVersion}, {"io_threads", config.io_threads}});
  // The HTTP clients' answers run on the io_context: keep it running (a work guard) until the
  // delivery workers have drained, then let it go.
  auto work =
      std::make_unique<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>>(
          ioc.get_executor());
  std::vector<std::thread> threads;
  threads.reserve(static_cast<std::size_t>(config.io_threads));
  for (int i = 0; i < config.io_threads; ++i) threads.emplace_back([&ioc] { ioc.run(); });
  {
    std::unique_lock lock(stop_mu);
    stop_cv.wait(lock, [&] { return stop_requested; });
  }
  if (drop_folders) drop_folders->stop();
  retention.stop();
  if (mapping_worker) mapping_worker->stop();
  for (auto& d : destinations) d.worker->stop(config.shutdown_timeout);
  work.reset();
  ioc.stop();
  for (auto& t : threads) t.join();
  // Commit whatever is still queued: those messages are durable even if their ACK never left.
  (*store)->close();
  log::info("adapterd.stopped");
  return 0;
}

int print_errors() {
  std::size_t n = 0;
  const ErrcInfo* rows = errc_table(n);
  std::printf("%-22s %-4s %-5s %-5s %-6s %s\n", "code", "ack", "0357", "http", "retry", "meaning");
  for (std::size_t i = 0; i < n; ++i) {
    const auto& r = rows[i];
    std::printf("%-22.*s %-4.*s %-5.*s %-5d %-6s %.*s\n", static_cast<int>(r.name.size()),
                r.name.data(), static_cast<int>(r.ack_code.size()), r.ack_code.data(),
                static_cast<int>(r.hl7_0357.size()), r.hl7_0357.data(), r.http_status,
                r.retryable ? "yes" : "no", static_cast<int>(r.meaning.size()), r.meaning.data());
  }
  return 0;
}

// An admin API answer on the command line: the body on stdout (200) or stderr, and the exit code.
int print_answer(const std::optional<app::AdminResponse>& answer) {
  if (!answer) return usage();
  std::fputs(answer->body.c_str(), answer->status == 200 ? stdout : stderr);
  return answer->status == 200 ? 0 : 1;
}

// `adapterd replay --dry-run (--failed | MESSAGE_ID)`: what the replay would change, mapped here
// with the configuration's mappings (app/replay_preview.h); nothing is written.
int replay_preview(const app::Config& config, store::SqliteStore& store,
                   std::optional<std::int64_t> id) {
  auto set = app::load_mappings(config.mapping);
  if (!set) {
    for (const auto& e : set.error()) {
      std::fprintf(stderr, "adapterd replay: %s: %s\n", e.where.c_str(), e.message.c_str());
    }
    return 1;
  }
  auto mapper = std::make_shared<const app::Mapper>(*set, config.mapping);
  app::AdminApi api(store, store, [&mapper] { return mapper; });
  return print_answer(
      api.handle("GET", id ? "/messages/" + std::to_string(*id) + "/replay-preview"
                           : std::string("/replay-preview?mapping=mapping_failed&limit=1000")));
}

// Marks mappings pending again; a running daemon maps them within its poll interval.
int replay(const app::Config& config, std::vector<std::string> operands) {
  log::configure({log::Level::warn, false, 2});
  const auto dry = std::find(operands.begin(), operands.end(), "--dry-run");
  const bool dry_run = dry != operands.end();
  if (dry_run) operands.erase(dry);
  std::optional<std::int64_t> id;
  if (operands.size() != 1) return usage();
  if (operands[0] != "--failed") {
    char* end = nullptr;
    const long long n = std::strtoll(operands[0].c_str(), &end, 10);
    if (end == operands[0].c_str() || *end != '\0' || n <= 0) return usage();
    id = n;
  }
  store::SqliteStoreOptions options;
  options.path = config.store.path;
  auto store = store::SqliteStore::open(options);
  if (!store) {
    std::fprintf(stderr, "adapterd replay: %s\n", store.error().to_string().c_str());
    return 1;
  }
  if (dry_run) {
    const int rc = replay_preview(config, **store, id);
    (*store)->close();
    return rc;
  }
  auto n = (*store)->requeue_mappings(id);
  (*store)->close();
  if (!n) {
    std::fprintf(stderr, "adapterd replay: %s\n", n.error().to_string().c_str());
    return 1;
  }
  std::printf("%lld message(s) queued for mapping\n", static_cast<long long>(*n));
  return id && *n == 0 ? 1 : 0;
}

// `adapterd messages list [--state S] [--control-id X] [--source N] [--sender A] [--from T]
// [--until T] [--limit N]` and `adapterd messages show ID`: the admin API's answers, on stdout.
int messages(const app::Config& config, const std::vector<std::string>& operands) {
  log::configure({log::Level::warn, false, 2});
  if (operands.empty()) return usage();
  std::string target;
  if (operands[0] == "show" && operands.size() == 2) {
    target = "/messages/" + operands[1] + "/detail";
  } else if (operands[0] == "list" && operands.size() % 2 == 1) {
    static const std::pair<const char*, const char*> kOptions[] = {
        {"--state", "state"},   {"--mapping", "mapping"}, {"--control-id", "control_id"},
        {"--source", "source"}, {"--sender", "sender"},   {"--from", "from"},
        {"--until", "until"},   {"--limit", "limit"},     {"--after", "after"}};
    target = "/messages";
    char sep = '?';
    for (std::size_t i = 1; i + 1 < operands.size(); i += 2) {
      const char* key = nullptr;
      for (const auto& [flag, name] : kOptions) {
        if (operands[i] == flag) key = name;
      }
      if (key == nullptr) return usage();
      std::string value;
      for (const char ch : operands[i + 1]) {
        const auto c = static_cast<unsigned char>(ch);
        if (std::isalnum(c) != 0 || c == '-' || c == '.' || c == '_' || c == ':') {
          value += ch;
        } else {
          char hex[4];
          std::snprintf(hex, sizeof hex, "%%%02X", static_cast<unsigned>(c));
          value += hex;
        }
      }
      target += sep;
      target += key;
      target += '=';
      target += value;
      sep = '&';
    }
  } else {
    return usage();
  }
  store::SqliteStoreOptions options;
  options.path = config.store.path;
  auto store = store::SqliteStore::open(options);
  if (!store) {
    std::fprintf(stderr, "adapterd messages: %s\n", store.error().to_string().c_str());
    return 1;
  }
  app::AdminApi api(**store, **store);
  const auto answer = api.handle("GET", target);
  (*store)->close();
  return print_answer(answer);
}

int dead_letters(const app::Config& config, const std::vector<std::string>& operands) {
  log::configure({log::Level::warn, false, 2});
  store::SqliteStoreOptions options;
  options.path = config.store.path;
  auto store = store::SqliteStore::open(options);
  if (!store) {
    std::fprintf(stderr, "adapterd dead-letters: %s\n", store.error().to_string().c_str());
    return 1;
  }
  const int rc = app::dead_letters_command(**store, operands, std::cout, std::cerr);
  (*store)->close();
  return rc;
}

int run(int argc, char** argv) {
  if (argc < 2) return usage();
  const std::string command = argv[1];
  const std::vector<std::string> args(argv + 2, argv + argc);
  if (command == "version" || command == "--version") {
    std::printf("adapterd %s\n", kVersion);
    return 0;
  }
  if (command == "errors") return print_errors();
  if (command == "functions") {
    app::print_functions(std::cout);
    return 0;
  }
  if (command != "serve" && command != "check" && command != "translate" &&
      command != "test-mappings" && command != "replay" && command != "dead-letters" &&
      command != "messages") {
    return usage();
  }

  auto config = load(args);
  if (!config) {
    std::fputs(config.error().to_string().c_str(), stderr);
    return 1;
  }
  // Arguments that are not options: files for translate, the folder for test-mappings.
  std::vector<std::string> operands;
  bool explain = false;
  app::Arrival arrival;  // translate: no receipt (MSH-7 stands for it), not a follow-up
  bool update = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--config") {
      ++i;
    } else if (args[i] == "--explain" && command == "translate") {
      explain = true;
    } else if (args[i] == "--supersedes" && command == "translate") {
      arrival.supersedes = true;
    } else if (args[i] == "--update" && command == "test-mappings") {
      update = true;
    } else {
      operands.push_back(args[i]);
    }
  }
  if (command == "check") {
    std::printf("configuration OK\n");
    return app::check_mappings(*config, std::cout);
  }
  if (command == "translate") {
    if (operands.empty()) return usage();
    return app::translate_command(*config, operands, explain, arrival, std::cout, std::cerr);
  }
  if (command == "test-mappings") {
    if (operands.size() != 1) return usage();
    return app::test_mappings_command(*config, operands[0], update, std::cout);
  }
  if (command == "messages") return messages(*config, operands);
  if (command == "replay") return replay(*config, operands);
  if (command == "dead-letters") return dead_letters(*config, operands);
  return serve(*config, config_path(args));
}

}  // namespace

int main(int argc, char** argv) {
  // Expected failures are values; an exception reaching here is a bug or an exhausted machine
  // (allocation failure). Say so and exit non-zero rather than abort without a word.
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "adapterd: fatal: %s\n", e.what());
  } catch (...) {
    std::fprintf(stderr, "adapterd: fatal: unknown exception\n");
  }
  return 70;  // EX_SOFTWARE
}
