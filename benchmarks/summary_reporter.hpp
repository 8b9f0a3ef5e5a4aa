// benchmarks/summary_reporter.hpp: the ratio summary shared by the *.bench.cpp executables.
//
// A SummaryReporter forwards every report to the display reporter (console or JSON), keeps the
// best run (lowest CPU time per iteration) of each benchmark, and on Finalize prints one line per
// Ratio, grouped by section (sections in order of first appearance), with met/MISSED against its
// target, then any notes. Ratios whose benchmarks did not run (filtered out) are skipped; with
// none left, nothing is printed.
//
// Installation, in main():
//
//   const std::string format = baypr_bench::output_format(argc, argv);  // before Initialize
//   benchmark::Initialize(&argc, argv);
//   ...register benchmarks, collect ratios...
//   baypr_bench::run_with_summary("x.bench", format, {std::move(ratios), notes, layout});
//   benchmark::Shutdown();
//
// The summary goes to stdout with the console format and to stderr with --benchmark_format=json
// (stdout then holds the JSON alone); other formats run without a summary.
#pragma once

#include <benchmark/benchmark.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace baypr_bench {

// One line of the summary: metric(numerator) / metric(denominator), where the metric is the
// named counter of the benchmark's best run or, with counter empty, its CPU time per iteration
// (so a time ratio old / new reads as a speedup); with denominator empty, metric(numerator) alone.
struct Ratio {
  std::string section;
  std::string label;
  std::string numerator;
  std::string denominator;  // empty: the numerator's metric alone
  std::string counter;      // empty: CPU time per iteration
  double target = 0;        // <= 0: none
  bool at_least = true;     // target met when value >= target (false: value <= target)
};

// Column widths of a summary line: "  <label, left-aligned> <value, %.4g right-aligned>".
struct SummaryLayout {
  int label_width = 34;
  int value_width = 12;
};

// Everything printed after the run.
struct Summary {
  std::vector<Ratio> ratios;
  std::vector<std::string> notes;  // "note: ..." lines after the ratios (only if any ratio printed)
  SummaryLayout layout;
};

class SummaryReporter : public benchmark::BenchmarkReporter {
 public:
  SummaryReporter(std::unique_ptr<benchmark::BenchmarkReporter> inner, std::ostream& out,
                  Summary summary)
      : inner_(std::move(inner)), out_(out), summary_(std::move(summary)) {}

  bool ReportContext(const Context& context) override { return inner_->ReportContext(context); }

  void ReportRuns(const std::vector<Run>& runs) override {
    inner_->ReportRuns(runs);
    for (const Run& run : runs) {
      if (run.run_type != Run::RT_Iteration || run.error_occurred || run.iterations <= 0) continue;
      const double s = run.cpu_accumulated_time / static_cast<double>(run.iterations);
      Best& b = best_[run.run_name.function_name];
      if (s < b.seconds) {
        b.seconds = s;
        b.counters.clear();
        for (const auto& [name, c] : run.counters) b.counters[name] = c.value;
      }
    }
  }

  void Finalize() override {
    inner_->Finalize();
    print_summary();
  }

 private:
  struct Best {
    double seconds = std::numeric_limits<double>::infinity();
    std::map<std::string, double> counters;
  };

  bool metric(const std::string& name, const std::string& counter, double& value) const {
    const auto it = best_.find(name);
    if (it == best_.end()) return false;
    if (counter.empty()) {
      value = it->second.seconds;
      return true;
    }
    const auto c = it->second.counters.find(counter);
    if (c == it->second.counters.end()) return false;
    value = c->second;
    return true;
  }

  void print_summary() const {
    const std::vector<Ratio>& ratios = summary_.ratios;
    std::vector<std::string> sections;
    for (const Ratio& r : ratios) {
      if (std::find(sections.begin(), sections.end(), r.section) == sections.end())
        sections.push_back(r.section);
    }
    std::vector<const Ratio*> ordered;
    for (const std::string& s : sections) {
      for (const Ratio& r : ratios) {
        if (r.section == s) ordered.push_back(&r);
      }
    }
    std::string section;
    bool any = false;
    for (const Ratio* rp : ordered) {
      const Ratio& r = *rp;
      double va = 0, vb = 1;
      if (!metric(r.numerator, r.counter, va)) continue;
      if (!r.denominator.empty() && !metric(r.denominator, r.counter, vb)) continue;
      if (!any) {
        out_ << "\n== Summary: ratios from this run (best CPU time of each benchmark) ==\n";
        any = true;
      }
      if (r.section != section) {
        section = r.section;
        out_ << section << "\n";
      }
      const double value = va / vb;
      out_ << line(r.label, value);
      if (r.target > 0) {
        const bool met = r.at_least ? value >= r.target : value <= r.target;
        out_ << (met ? "  met" : "  MISSED") << " (target " << (r.at_least ? ">= " : "<= ")
             << r.target << ")";
      }
      out_ << "\n";
    }
    if (any) {
      for (const std::string& n : summary_.notes) out_ << "note: " << n << "\n";
    }
    out_.flush();
  }

  std::string line(const std::string& label, double value) const {
    const SummaryLayout& l = summary_.layout;
    const int n = std::snprintf(nullptr, 0, "  %-*s %*.4g", l.label_width, label.c_str(),
                                l.value_width, value);
    if (n <= 0) return {};
    std::string s(static_cast<std::size_t>(n) + 1, '\0');
    std::snprintf(s.data(), s.size(), "  %-*s %*.4g", l.label_width, label.c_str(), l.value_width,
                  value);
    s.resize(static_cast<std::size_t>(n));
    return s;
  }

  std::unique_ptr<benchmark::BenchmarkReporter> inner_;
  std::ostream& out_;
  Summary summary_;
  std::map<std::string, Best> best_;
};

// The value of --benchmark_format (console when absent); call before benchmark::Initialize,
// which removes the flags it reads from argv.
inline std::string output_format(int argc, char** argv) {
  constexpr std::string_view flag = "--benchmark_format=";
  std::string format = "console";
  for (int i = 1; i < argc; ++i) {
    const std::string_view a(argv[i]);
    if (a.substr(0, flag.size()) == flag) format = std::string(a.substr(flag.size()));
  }
  return format;
}

// benchmark::RunSpecifiedBenchmarks through a SummaryReporter around the reporter `format`
// names: console (summary to stdout) or json (summary to stderr). Any other format runs with
// benchmark's own reporter and a line on stderr, "<program>: no ratio summary with ...".
inline void run_with_summary(std::string_view program, const std::string& format, Summary summary) {
  std::unique_ptr<benchmark::BenchmarkReporter> inner;
  std::ostream* summary_out = &std::cout;
  if (format == "console") {
    inner = std::make_unique<benchmark::ConsoleReporter>(
        isatty(fileno(stdout)) != 0 ? benchmark::ConsoleReporter::OO_ColorTabular
                                    : benchmark::ConsoleReporter::OO_Tabular);
  } else if (format == "json") {
    inner = std::make_unique<benchmark::JSONReporter>();
    summary_out = &std::cerr;
  }
  if (inner) {
    SummaryReporter reporter(std::move(inner), *summary_out, std::move(summary));
    benchmark::RunSpecifiedBenchmarks(&reporter);
  } else {
    std::cerr << program << ": no ratio summary with --benchmark_format=" << format << "\n";
    benchmark::RunSpecifiedBenchmarks();
  }
}

}  // namespace baypr_bench
