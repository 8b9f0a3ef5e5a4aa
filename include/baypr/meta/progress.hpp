// baypr/meta/progress.hpp: a terminal progress bar for meta::train's observer.
//
//   TrainObserver progress_bar(std::FILE* stream = stderr,
//                              ProgressBar when = ProgressBar::if_terminal)
//
// After every update it redraws one line "[=====     ] epoch e/E  update u/U  ETA h:mm:ss" with a
// carriage return; at the end of every epoch it ends the line with the epoch's losses and
// validation value, so a log of the stream keeps one line per epoch. if_terminal draws only when
// the stream is a terminal, asked through POSIX isatty or the Windows CRT's _isatty where the
// platform has one (elsewhere never); always and never do what they say.
#pragma once

#include <algorithm>
#include <cstdio>
#include <string>

#include "baypr/meta/trainer.hpp"

#if __has_include(<unistd.h>)
#include <unistd.h>
#define BAYPR_DETAIL_ISATTY(stream) (::isatty(::fileno(stream)) != 0)
#elif __has_include(<io.h>)
#include <io.h>
#define BAYPR_DETAIL_ISATTY(stream) (::_isatty(::_fileno(stream)) != 0)
#else
#define BAYPR_DETAIL_ISATTY(stream) false
#endif

namespace baypr::meta {

enum class ProgressBar { if_terminal, always, never };

namespace detail {

inline bool is_terminal(std::FILE* stream) {
  return stream != nullptr && BAYPR_DETAIL_ISATTY(stream);
}

inline std::string format_duration(double seconds) {
  const long long s = static_cast<long long>(std::max(seconds, 0.0) + 0.5);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", s / 3600, (s / 60) % 60, s % 60);
  return buf;
}

}  // namespace detail

#undef BAYPR_DETAIL_ISATTY

[[nodiscard]] inline TrainObserver progress_bar(std::FILE* stream = stderr,
                                                ProgressBar when = ProgressBar::if_terminal) {
  const bool show = when == ProgressBar::always ||
                    (when == ProgressBar::if_terminal && detail::is_terminal(stream));
  if (!show || stream == nullptr) return {};
  return [stream](const TrainProgress& p) {
    constexpr int width = 30;
    const int filled = width * p.updates_done / std::max(p.total_updates, 1);
    const double eta =
        p.updates_done > 0 ? p.seconds / p.updates_done * (p.total_updates - p.updates_done) : 0.0;
    std::fprintf(stream, "\r[%.*s%*s] epoch %d/%d  update %d/%d  ETA %s ", filled,
                 "==============================", width - filled, "", p.epoch, p.epochs, p.update,
                 p.steps_per_epoch, detail::format_duration(eta).c_str());
    if (p.epoch_end != nullptr) {
      std::fprintf(stream, " outer %.4g  inner %.4g  validation %.4g\n", p.epoch_end->outer_loss,
                   p.epoch_end->inner_loss, p.epoch_end->validation);
    }
    std::fflush(stream);
  };
}

}  // namespace baypr::meta
