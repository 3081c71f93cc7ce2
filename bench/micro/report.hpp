// report.hpp - the rows of skyloft_micro's table (key, title, unit, one series per system, targets and
// their checks), which rows --filter selects, the table with its notes, and the CSV.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "runner.hpp"

namespace skyloft::bench::micro {

struct Row {
  std::string key;
  std::string title;
  std::string unit;
  Series sky, stdt, boost;
  std::string target;  // human-readable targets
  // Checks: description and predicate over the row; a check whose inputs are missing reads "?".
  struct Check {
    std::string what;
    std::function<std::optional<bool>(const Row&)> ok;
  };
  std::vector<Check> checks;
};

// The rows in table order: spawn_join, yield, mutex, condvar_1core, condvar_2core, yield_tls,
// spawn_join_tls. The yield_tls row's check points at the yield row, so the vector must not reallocate.
std::vector<Row> make_rows();

// Whether --filter selects the benchmark `key`.
bool selected(const std::string& key);

// The table and its notes (`cross_note`: the 2-core placement note, printed when not empty). The one-core
// rows ran on `core`, the 2-core rows on c0 and c1.
void print_report(const std::vector<Row>& rows, int core, int c0, int c1, const std::string& cross_note);

// Writes the measured cells to --csv; false (after a message) when that fails.
bool write_csv(const std::vector<Row>& rows);

}  // namespace skyloft::bench::micro
