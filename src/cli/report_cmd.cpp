#include "cli/report_cmd.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <expected>
#include <string_view>

#include <nlohmann/json.hpp>

#include "cli/output.h"
#include "common/exit_status.h"
#include "common/atomic_file.h"
#include "common/clock.h"
#include "common/log.h"
#include "report/alert.h"
#include "report/bcc_text_reader.h"
#include "report/diff.h"
#include "report/html.h"
#include "report/html_writer.h"
#include "report/json_writer.h"
#include "report/render.h"

namespace leakwatch::cli {
namespace {


// A usage error (exit 2) is a problem with the command line; anything else is exit 1.
struct Failure {
  int exit_code;
  std::string message;
};

struct Input {
  std::string name;        // as given on the command line ("-" shown as "stdin")
  report::Report report;
  std::string hhmmss;      // time for the text header, "" when the input has none
  // A growth report (`leakwatch growth --format json`), kept as read: rendered as HTML only.
  std::optional<nlohmann::ordered_json> growth;
};

bool is_growth_json(std::string_view text) {
  auto j = nlohmann::ordered_json::parse(text, nullptr, /*allow_exceptions=*/false);
  return j.is_object() && j.value("kind", "") == "growth";
}

Result<std::string> read_stdin() {
  std::string data;
  char buf[65536];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, stdin)) > 0) data.append(buf, n);
  if (std::ferror(stdin)) return fail_errno("reading stdin");
  return data;
}

// BCC's header carries the local time of the report; the reader keeps only the stacks, so
// the text writer gets the time of the last header ("[14:02:11] Top 10 stacks ...") here.
std::string last_bcc_header_time(std::string_view text) {
  std::string found;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    if (line.size() > 10 && line[0] == '[' && line[9] == ']' &&
        line.find("stacks with outstanding allocations") != std::string_view::npos)
      found = std::string(line.substr(1, 8));
    pos = end + 1;
  }
  return found;
}

bool looks_like_json(std::string_view text) {
  if (text.starts_with("\xEF\xBB\xBF")) text.remove_prefix(3);  // UTF-8 byte order mark
  size_t i = text.find_first_not_of(" \t\r\n");
  return i != std::string_view::npos && text[i] == '{';
}

std::expected<Input, Failure> load(const std::string& path, uint64_t sample_rate) {
  Input in;
  in.name = path == "-" ? "stdin" : path;
  auto data = path == "-" ? read_stdin() : read_file(path);
  if (!data) return std::unexpected(Failure{kExitError, data.error().message});
  if (data->find_first_not_of(" \t\r\n") == std::string::npos)
    return std::unexpected(Failure{kExitError, fmt::format("{}: empty input", in.name)});
  if (looks_like_json(*data) && is_growth_json(*data)) {
    in.growth = nlohmann::ordered_json::parse(*data, nullptr, false);
  } else if (looks_like_json(*data)) {
    if (sample_rate > 1)
      return std::unexpected(Failure{
          kExitUsage,
          fmt::format("{}: --sample-rate applies to BCC memleak text; this is a leakwatch "
                      "JSON report, which records its own sampling", in.name)});
    auto rep = report::read_json(*data);
    if (!rep) return std::unexpected(Failure{kExitError, fmt::format("{}: {}", in.name, rep.error().message)});
    in.report = std::move(*rep);
    if (in.report.timestamp_unix_ms > 0) in.hhmmss = local_hhmmss(in.report.timestamp_unix_ms);
  } else {
    auto rep = report::read_bcc_text(*data, sample_rate);
    if (!rep) return std::unexpected(Failure{kExitError, fmt::format("{}: {}", in.name, rep.error().message)});
    in.report = std::move(*rep);
    in.hhmmss = last_bcc_header_time(*data);
  }
  return in;
}

std::expected<void, Failure> validate(const ReportOptions& o, report::Format& format) {
  auto usage = [](std::string msg) { return std::unexpected(Failure{kExitUsage, std::move(msg)}); };
  auto f = report::parse_format(o.format);
  if (!f) return usage(fmt::format("--format: unknown format '{}' (text, json, pprof, folded, html)", o.format));
  format = *f;
  if (o.files.empty() && o.diff.empty())
    return usage("no input: give one or more report files, or --diff BASE NEW");
  if (!o.files.empty() && !o.diff.empty())
    return usage("--diff BASE NEW takes its two reports itself: give no other input files");
  if (o.top <= 0) return usage(fmt::format("-T: must be positive, got {}", o.top));
  if (o.sample_rate == 0) return usage("--sample-rate: must be >= 1");
  if (format == report::Format::kPprof && o.files.size() > 1)
    return usage(fmt::format("--format pprof writes one profile: give one input (got {}), or "
                             "run once per file", o.files.size()));
  if (format == report::Format::kHtml && o.files.size() > 1)
    return usage(fmt::format("--format html writes one page: give one input (got {}), or "
                             "run once per file", o.files.size()));
  if (format == report::Format::kPprof && o.output.empty() && ::isatty(STDOUT_FILENO))
    return usage("--format pprof is binary: give --output FILE");
  const auto& inputs = o.diff.empty() ? o.files : o.diff;
  if (std::count(inputs.begin(), inputs.end(), "-") > 1)
    return usage("stdin ('-') can be read only once");
  return {};
}

int severity_exit(const std::string& severity) {
  if (severity == "high") return kExitAlertHigh;
  if (severity == "medium") return kExitAlertMedium;
  return kExitOk;
}

// JSON Lines when several reports share one stream: each report's object on one line, so
// `jq -c`, `json.loads(line)` and log shippers read them one by one.
std::string one_line_json(const std::string& pretty) {
  // ordered_json keeps the writer's field order (version first).
  auto j = nlohmann::ordered_json::parse(pretty, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return pretty;
  return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
}

int run(const ReportOptions& o) {
  report::Format format = report::Format::kText;
  if (auto v = validate(o, format); !v) {
    log::error("{}", v.error().message);
    return v.error().exit_code;
  }

  std::vector<Input> inputs;
  for (const std::string& path : o.diff.empty() ? o.files : o.diff) {
    auto in = load(path, o.sample_rate);
    if (!in) {
      log::error("{}", in.error().message);
      return in.error().exit_code;
    }
    inputs.push_back(std::move(*in));
  }
  if (!o.diff.empty()) {
    for (const Input& in : inputs)
      if (in.growth) {
        log::error("{}: a growth report: --diff compares allocation reports", in.name);
        return kExitUsage;
      }
    Input d;
    d.name = fmt::format("diff {} -> {}", inputs[0].name, inputs[1].name);
    d.report = report::diff_reports(inputs[0].report, inputs[1].report);
    d.hhmmss = inputs[1].hhmmss;
    inputs = {std::move(d)};
  }

  const bool alerting = o.alert_threshold_mb >= 0;
  // The alert line follows its report on stdout when that stays readable: text on stdout,
  // or any format written to --output.  JSON, folded and pprof on stdout keep the stream
  // clean for their consumers; the alert line goes to stderr then.
  const bool alert_inline = format == report::Format::kText && o.output.empty();
  std::string out;
  std::vector<std::string> alert_lines;
  int exit_code = kExitOk;
  for (const Input& in : inputs) {
    report::TextOptions text;
    text.top = o.top;
    text.show_allocs = o.show_allocs;
    text.time_hhmmss = in.hhmmss.empty() ? "00:00:00" : in.hhmmss;
    if (in.growth && format != report::Format::kHtml) {
      log::error("{}: a growth report: `leakwatch report` renders it as html only (its other "
                 "formats come from `leakwatch growth --format`)", in.name);
      return kExitUsage;
    }
    if (in.growth && alerting) {
      log::error("{}: a growth report: --alert-threshold applies to allocation reports", in.name);
      return kExitUsage;
    }
    auto rendered = in.growth ? Result<std::string>(report::write_growth_html(*in.growth))
                    : format == report::Format::kHtml && !o.diff.empty()
                        ? Result<std::string>(report::write_diff_html(in.report))
                        : report::render(in.report, format, text);
    if (!rendered) {
      log::error("{}: {}", in.name, rendered.error().message);
      return kExitError;
    }
    out += format == report::Format::kJson && inputs.size() > 1 ? one_line_json(*rendered) : *rendered;
    if (!alerting) continue;
    report::Alert alert = report::evaluate_alert(in.report, o.alert_threshold_mb);
    std::string line = inputs.size() > 1 ? in.name + ": " + alert.text : alert.text;
    if (alert_inline) out += line + "\n";
    else alert_lines.push_back(std::move(line));
    exit_code = std::max(exit_code, severity_exit(alert.severity));
  }

  if (auto w = write_output(o.output, out); !w) {
    log::error("{}", w.error().message);
    return kExitError;
  }
  std::FILE* alert_stream = o.output.empty() ? stderr : stdout;
  for (const std::string& line : alert_lines) std::fprintf(alert_stream, "%s\n", line.c_str());
  std::fflush(alert_stream);
  return exit_code;
}

}  // namespace

CLI::App* add_report_subcommand(CLI::App& app, ReportOptions& o) {
  CLI::App* sub = app.add_subcommand(
      "report",
      "Re-render saved reports, diff two of them, or alert on one.\n"
      "Inputs are leakwatch JSON reports (`memleak --format json --output F`) or the text\n"
      "BCC memleak (tools/memleak.py, libbpf-tools memleak) or `leakwatch memleak` print;\n"
      "the kind is detected from the content (JSON starts with '{'). Of a text input, the\n"
      "last \"Top N stacks\" block is read. '-' reads stdin.");
  CLI::Option* files = sub->add_option("files", o.files, "report files to render, in order")
                           ->type_name("FILE");
  CLI::Option* diff =
      sub->add_option("--diff", o.diff,
                      "per-stack change in outstanding bytes and allocations from BASE to NEW, "
                      "largest growth first; stacks gone from NEW show as negative changes")
          ->expected(2)
          ->type_name("BASE NEW");
  diff->excludes(files);
  sub->add_option("--format", o.format,
                  "text (BCC memleak's layout), json, pprof (gzipped profile.proto), folded "
                  "(flame graph input), html (one self-contained page; with --diff, the "
                  "change coloured by growth and shrinkage)")
      ->type_name("FORMAT")
      ->capture_default_str();
  sub->add_option("--output", o.output,
                  "write to FILE (atomically: a temporary file renamed over it) instead of stdout")
      ->type_name("FILE");
  sub->add_option("-T,--top", o.top, "stacks shown in the text format (the others carry every stack)")
      ->type_name("N")
      ->capture_default_str();
  sub->add_option("-s,--sample-rate", o.sample_rate,
                  "the N of the BCC memleak -s N run that produced a text input: its figures "
                  "are sampled, estimates are x N with a 95% interval (JSON inputs record "
                  "their own sampling)")
      ->type_name("N")
      ->capture_default_str();
  sub->add_option("--alert-threshold", o.alert_threshold_mb,
                  "print an alert line for the estimated outstanding bytes of stacks whose "
                  "verdict is leak or unknown: severity high above 100 MB, medium above MB, "
                  "else an OK line; the exit status says which (1 MB = 1 MiB)")
      ->check(CLI::NonNegativeNumber)
      ->type_name("MB");
  sub->add_flag("-a,--show-allocs", o.show_allocs,
                "text: list the outstanding allocations a report saved with memleak -a carries");
  sub->footer(
      "Several inputs are rendered one after another, in the order given: text blocks in a\n"
      "row; folded lines concatenated (flame-graph tools add identical paths, so this gives\n"
      "one combined graph); JSON as JSON Lines (one compact object per input; one input gives\n"
      "the usual indented object). pprof takes exactly one input (or one --diff).\n"
      "\n"
      "The alert line follows each report on stdout when the report is text on stdout or\n"
      "goes to --output; with json, folded or pprof on stdout it goes to stderr so the\n"
      "stream stays valid. With several inputs each alert line starts with the file name.\n"
      "\n"
      "Exit status: 0 ok, no alert (or no --alert-threshold); 1 error (unreadable or invalid\n"
      "input, write failure); 2 usage error; 4 medium alert; 5 high alert (the most severe\n"
      "of several inputs). The report is written in every case but 1 and 2.\n"
      "\n"
      "Examples:\n"
      "  leakwatch report leaks.json                          BCC-style text\n"
      "  leakwatch report leaks.json --format pprof --output leaks.pb.gz\n"
      "  go tool pprof -top -sample_index=inuse_space leaks.pb.gz\n"
      "  leakwatch report leaks.json --format folded | flamegraph.pl > leaks.svg\n"
      "  python3 memleak.py -p 1234 -s 10 30 1 > bcc.txt\n"
      "  leakwatch report bcc.txt -s 10 --format json       BCC output, x10 estimates\n"
      "  leakwatch report --diff monday.json tuesday.json -T 5\n"
      "  leakwatch report --diff monday.json tuesday.json --format html --output diff.html\n"
      "  leakwatch report leaks.json --alert-threshold 50 >/dev/null\n"
      "  case $? in 0) ;; 4) echo medium ;; 5) echo high ;; *) echo error ;; esac");
  return sub;
}

int run_report(const ReportOptions& opts) { return run(opts); }

}  // namespace leakwatch::cli
