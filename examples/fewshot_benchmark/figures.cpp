// Charts for the benchmark report (gnuplot through examples/report.hpp when built with it).
#include <cstdio>

#include "common.hpp"

#ifdef BAYPR_REPORT_FIGURES
#include "report.hpp"
#endif

namespace bench {

std::string score_charts(const Report& report, const std::string& stem, const std::string& title,
                         const std::vector<std::string>& methods,
                         const std::vector<Eigen::VectorXd>& scores,
                         const Eigen::VectorXi& labels) {
#ifdef BAYPR_REPORT_FIGURES
  if (!report.figures) return "";
  std::vector<baypr::report::Curve> curves;
  std::vector<baypr::report::ScoreSample> samples;
  for (std::size_t m = 0; m < methods.size(); ++m) {
    const auto roc = baypr::roc_curve(scores[m], labels);
    char label[160];
    std::snprintf(label, sizeof label, "%s (AUROC %.3f)", methods[m].c_str(),
                  baypr::auroc(scores[m], labels));
    curves.push_back({label, {roc.fpr.begin(), roc.fpr.end()}, {roc.tpr.begin(), roc.tpr.end()}});
    baypr::report::ScoreSample s{methods[m], {}, {}};
    for (Eigen::Index i = 0; i < labels.size(); ++i)
      (labels(i) == 0 ? s.normal : s.anomalous).push_back(scores[m](i));
    samples.push_back(std::move(s));
  }
  std::string md;
  if (baypr::report::plot_roc_curves(report.figure(stem + "-roc.png"), title, curves)) {
    md += "![ROC curves: " + title + "](figures/" + stem + "-roc.png)\n";
  }
  if (baypr::report::plot_score_histograms(report.figure(stem + "-hist.png"), title, samples)) {
    md += "![Score histograms: " + title + "](figures/" + stem + "-hist.png)\n";
  }
  if (md.empty())
    md = "(gnuplot is not installed: the chart data and scripts are in figures/" + stem +
         "-*.dat/.gp)\n";
  return md + "\n";
#else
  (void)report, (void)stem, (void)title, (void)methods, (void)scores, (void)labels;
  return "";
#endif
}

}  // namespace bench
