// The unified diff of a planned change (Myers' algorithm, three lines of context).

#include "aas_bundle/rewrite/rewrite.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace aas::rewrite {

namespace {

std::vector<std::string_view> diff_lines(std::string_view text) {
    std::vector<std::string_view> out;
    std::size_t pos = 0;
    while (pos < text.size()) {
        auto nl = text.find('\n', pos);
        std::size_t end = nl == std::string_view::npos ? text.size() : nl + 1;
        out.push_back(text.substr(pos, end - pos));
        pos = end;
    }
    return out;
}

enum class Op { equal, del, ins };

std::vector<Op> myers(const std::vector<std::string_view>& a, const std::vector<std::string_view>& b) {
    const long n = static_cast<long>(a.size()), m = static_cast<long>(b.size());
    std::vector<std::vector<long>> trace; // trace[d][k + d]: furthest x on diagonal k after d edits
    auto get = [&](long d, long k) { return trace[static_cast<std::size_t>(d)][static_cast<std::size_t>(k + d)]; };
    long found_d = -1;
    for (long d = 0; d <= n + m && found_d < 0; ++d) {
        std::vector<long> v(static_cast<std::size_t>(2 * d + 1));
        for (long k = -d; k <= d; k += 2) {
            long x;
            if (d == 0)
                x = 0;
            else if (k == -d || (k != d && get(d - 1, k - 1) < get(d - 1, k + 1)))
                x = get(d - 1, k + 1);
            else
                x = get(d - 1, k - 1) + 1;
            long y = x - k;
            while (x < n && y < m && a[static_cast<std::size_t>(x)] == b[static_cast<std::size_t>(y)]) ++x, ++y;
            v[static_cast<std::size_t>(k + d)] = x;
            if (x >= n && y >= m) found_d = d;
        }
        trace.push_back(std::move(v));
    }
    std::vector<Op> ops;
    long x = n, y = m;
    for (long d = found_d; d > 0; --d) {
        long k = x - y;
        bool down = k == -d || (k != d && get(d - 1, k - 1) < get(d - 1, k + 1));
        long pk = down ? k + 1 : k - 1;
        long px = get(d - 1, pk), py = px - pk;
        long mx = down ? px : px + 1, my = down ? py + 1 : py;
        while (x > mx && y > my) {
            ops.push_back(Op::equal);
            --x, --y;
        }
        ops.push_back(down ? Op::ins : Op::del);
        x = px, y = py;
    }
    while (x > 0 && y > 0) {
        ops.push_back(Op::equal);
        --x, --y;
    }
    std::reverse(ops.begin(), ops.end());
    return ops;
}

std::string range(std::size_t start, std::size_t count) {
    if (count == 1) return std::to_string(start);
    return fmt::format("{},{}", count == 0 ? (start == 0 ? 0 : start - 1) : start, count);
}

} // namespace

std::string unified_diff(const FileChange& change) {
    if (!change.created && change.before == change.after) return {};
    auto a = diff_lines(change.before);
    auto b = diff_lines(change.after);
    auto ops = myers(a, b);
    constexpr std::size_t context = 3;
    std::string out = change.created ? "--- /dev/null\n" : "--- a/" + change.path + "\n";
    out += "+++ b/" + change.path + "\n";

    // Positions in a and b before each op.
    std::vector<std::size_t> ai(ops.size() + 1), bi(ops.size() + 1);
    for (std::size_t i = 0; i < ops.size(); ++i) {
        ai[i + 1] = ai[i] + (ops[i] != Op::ins);
        bi[i + 1] = bi[i] + (ops[i] != Op::del);
    }
    auto emit = [&](char mark, std::string_view line) {
        out += mark;
        out.append(line);
        if (line.empty() || line.back() != '\n') out += "\n\\ No newline at end of file\n";
    };
    std::size_t i = 0;
    while (i < ops.size()) {
        while (i < ops.size() && ops[i] == Op::equal) ++i;
        if (i == ops.size()) break;
        std::size_t start = i >= context ? i - context : 0;
        // Extend over changes separated by at most 2 * context equal lines.
        std::size_t end = i;
        for (;;) {
            while (end < ops.size() && ops[end] != Op::equal) ++end;
            std::size_t gap = end;
            while (gap < ops.size() && ops[gap] == Op::equal) ++gap;
            if (gap < ops.size() && gap - end <= 2 * context) {
                end = gap;
                continue;
            }
            end = std::min(ops.size(), end + context);
            break;
        }
        std::size_t ac = ai[end] - ai[start], bc = bi[end] - bi[start];
        out += fmt::format("@@ -{} +{} @@\n", range(ai[start] + 1, ac), range(bi[start] + 1, bc));
        for (std::size_t j = start; j < end; ++j) {
            if (ops[j] == Op::equal)
                emit(' ', a[ai[j]]);
            else if (ops[j] == Op::del)
                emit('-', a[ai[j]]);
            else
                emit('+', b[bi[j]]);
        }
        i = end;
    }
    return out;
}

} // namespace aas::rewrite
