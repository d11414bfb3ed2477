#include "aas_bundle/chart/values.hpp"

#include <doctest/doctest.h>

#include <chrono>

#include <string>

using aas::chart::merge_values;
using aas::chart::parse_yaml;
using aas::chart::parse_yaml_documents;
using aas::chart::Value;
using Kind = aas::chart::Value::Kind;

TEST_CASE("chart::values parse scalars with helm's YAML 1.1 types") {
    auto v = parse_yaml("a: 1\n"
                        "b: '1'\n"
                        "c: 1.5\n"
                        "d: true\n"
                        "e: \"true\"\n"
                        "f: False\n"
                        "g: ~\n"
                        "h:\n"
                        "i: null\n"
                        "j: text\n"
                        "k: 0x1F\n"
                        "l: 1e3\n"
                        "m: yes\n"
                        "n: off\n"
                        "o: 6.0.3-debian-11-r9\n"
                        "p: !!str 5\n"
                        "q: ''\n"
                        "r: -12\n"
                        "s: |\n  block\n",
                        "v.yaml");
    REQUIRE(v.is_map());
    auto kind = [&](const char* k) { return v.find(k)->kind(); };
    CHECK(kind("a") == Kind::number);
    CHECK(v.find("a")->text() == "1");
    CHECK(kind("b") == Kind::string);
    CHECK(v.find("b")->text() == "1");
    CHECK(kind("c") == Kind::number);
    CHECK(v.find("c")->text() == "1.5");
    CHECK(kind("d") == Kind::boolean);
    CHECK(v.find("d")->as_bool());
    CHECK(kind("e") == Kind::string);
    CHECK(kind("f") == Kind::boolean);
    CHECK(v.find("f")->text() == "false");
    CHECK(kind("g") == Kind::null);
    CHECK(kind("h") == Kind::null);
    CHECK(kind("i") == Kind::null);
    CHECK(kind("j") == Kind::string);
    CHECK(kind("k") == Kind::number);
    CHECK(kind("l") == Kind::number);
    CHECK(kind("m") == Kind::boolean);
    CHECK(v.find("m")->as_bool());
    CHECK(kind("n") == Kind::boolean);
    CHECK_FALSE(v.find("n")->as_bool());
    CHECK(kind("o") == Kind::string);
    CHECK(kind("p") == Kind::string);
    CHECK(v.find("p")->text() == "5");
    CHECK(kind("q") == Kind::string);
    CHECK(v.find("q")->text().empty());
    CHECK(kind("r") == Kind::number);
    CHECK(v.find("s")->text() == "block\n");
    CHECK(v.find("s")->kind() == Kind::string);
}

TEST_CASE("chart::values origins record file, line and values path") {
    auto v = parse_yaml("# comment\n"
                        "image:\n"
                        "  registry: docker.io\n"
                        "  repository: bitnami/mongodb\n"
                        "args:\n"
                        "  - --a\n"
                        "  - name: x\n"
                        "    value: z\n"
                        "empty:\n"
                        "last: 1\n",
                        "env/values.yaml");
    const Value* reg = v.at_path("image.registry");
    REQUIRE(reg);
    CHECK(reg->text() == "docker.io");
    CHECK(reg->origin().file == "env/values.yaml");
    CHECK(reg->origin().line == 3);
    CHECK(reg->origin().values_path == "image.registry");
    CHECK(v.find("image")->origin().line == 2);
    CHECK(v.find("image")->origin().values_path == "image");
    const Value* a = v.at_path("args[0]");
    REQUIRE(a);
    CHECK(a->text() == "--a");
    CHECK(a->origin().line == 6);
    CHECK(a->origin().values_path == "args[0]");
    const Value* val = v.at_path("args[1].value");
    REQUIRE(val);
    CHECK(val->text() == "z");
    CHECK(val->origin().line == 8);
    CHECK(val->origin().values_path == "args[1].value");
    CHECK(v.find("empty")->is_null());
    CHECK(v.find("empty")->origin().line == 9);
    CHECK(v.origin().values_path.empty());
}

TEST_CASE("chart::values at_path") {
    auto v = parse_yaml("a:\n  b:\n    - [1, 2]\n    - c: d\n", "f");
    CHECK(v.at_path("a.b[0][1]")->text() == "2");
    CHECK(v.at_path("a.b[1].c")->text() == "d");
    CHECK(v.at_path("a.b[2]") == nullptr);
    CHECK(v.at_path("a.x") == nullptr);
    CHECK(v.at_path("a.b.c") == nullptr);
    CHECK(v.at_path("a.b[x]") == nullptr);
    CHECK(v.at_path("") == &v);
}

TEST_CASE("chart::values truthy follows Go template rules") {
    auto v = parse_yaml("a: 0\nb: 0.0\nc: ''\nd: false\ne: {}\nf: []\ng: ~\n"
                        "h: 1\ni: x\nj: true\nk: {x: 1}\nl: [0]\nm: '0'\nn: 0x0\n",
                        "f");
    for (const char* k : {"a", "b", "c", "d", "e", "f", "g", "n"}) CHECK_MESSAGE(!v.find(k)->truthy(), k);
    for (const char* k : {"h", "i", "j", "k", "l", "m"}) CHECK_MESSAGE(v.find(k)->truthy(), k);
}

TEST_CASE("chart::values map editing keeps insertion order") {
    Value m = Value::make_map();
    m.set("b", Value::make_string("1"));
    m.set("a", Value::make_string("2"));
    m.set("b", Value::make_string("3"));
    REQUIRE(m.entries().size() == 2);
    CHECK(m.entries()[0].first == "b");
    CHECK(m.entries()[0].second.text() == "3");
    CHECK(m.erase("b"));
    CHECK_FALSE(m.erase("b"));
    CHECK(m.entries().size() == 1);
}

TEST_CASE("chart::values merge: top wins, maps merge, null deletes") {
    auto base = parse_yaml("image:\n  registry: docker.io\n  repository: bitnami/mongodb\n  tag: '1'\n"
                           "replicas: 1\nextra: {a: 1}\nlist: [1, 2]\nscalar: x\n",
                           "chart/values.yaml");
    auto top = parse_yaml("image:\n  tag: '2'\n  pullPolicy: Always\nextra: ~\nlist: [3]\nscalar: {now: map}\nnew: 1\n"
                          "gone: ~\n",
                          "env/values.yaml");
    auto m = merge_values(base, top);
    CHECK(m.at_path("image.registry")->text() == "docker.io");
    CHECK(m.at_path("image.registry")->origin().file == "chart/values.yaml");
    CHECK(m.at_path("image.registry")->origin().line == 2);
    CHECK(m.at_path("image.tag")->text() == "2");
    CHECK(m.at_path("image.tag")->origin().file == "env/values.yaml");
    CHECK(m.at_path("image.tag")->origin().line == 2);
    CHECK(m.at_path("image.tag")->origin().values_path == "image.tag");
    CHECK(m.at_path("image.pullPolicy")->text() == "Always");
    CHECK(m.at_path("replicas")->text() == "1");
    CHECK(m.find("extra") == nullptr);
    REQUIRE(m.find("list")->items().size() == 1);
    CHECK(m.find("list")->items()[0].text() == "3");
    CHECK(m.at_path("scalar.now")->text() == "map");
    CHECK(m.find("new")->text() == "1");
    // A null with no default to remove stays (as in helm).
    REQUIRE(m.find("gone"));
    CHECK(m.find("gone")->is_null());
    // Base keys keep their order.
    CHECK(m.entries()[0].first == "image");
    CHECK(m.entries()[1].first == "replicas");
}

TEST_CASE("chart::values merge of non-maps returns top") {
    auto base = parse_yaml("a: 1", "b");
    auto top = parse_yaml("- x", "t");
    auto m = merge_values(base, top);
    CHECK(m.is_list());
    CHECK(merge_values(top, base).is_map());
}

TEST_CASE("chart::values prefix_paths") {
    auto v = parse_yaml("image:\n  tag: x\nlist:\n  - a\n", "sub/values.yaml");
    v.prefix_paths("mongodb.metrics");
    CHECK(v.origin().values_path == "mongodb.metrics");
    CHECK(v.at_path("image.tag")->origin().values_path == "mongodb.metrics.image.tag");
    CHECK(v.at_path("list[0]")->origin().values_path == "mongodb.metrics.list[0]");
    CHECK(v.at_path("image.tag")->origin().file == "sub/values.yaml");
    v.prefix_paths("");
    CHECK(v.at_path("image.tag")->origin().values_path == "mongodb.metrics.image.tag");
    Value item = Value::make_string("x", {"f", 1, "[0]"});
    item.prefix_paths("a");
    CHECK(item.origin().values_path == "a[0]");
}

TEST_CASE("chart::values errors name file and line") {
    try {
        parse_yaml("a: 1\nb: [1, 2\nc: 3\n", "env/bad.yaml");
        FAIL("no error");
    } catch (const aas::Error& e) {
        std::string msg = e.what();
        CHECK(msg.rfind("env/bad.yaml:", 0) == 0);
        CHECK(msg.find("end of sequence") != std::string::npos);
    }
    try {
        parse_yaml("a: 1\n b: 2\n", "x.yaml");
        FAIL("no error");
    } catch (const aas::Error& e) {
        CHECK(std::string(e.what()).rfind("x.yaml:2:", 0) == 0);
    }
    CHECK_THROWS_AS(parse_yaml_documents("a: 1\n---\nb: [\n", "m.yaml"), aas::Error);
    CHECK_THROWS_WITH_AS(parse_yaml("a: !!bool maybe\n", "t.yaml"), doctest::Contains("t.yaml:1:"), aas::Error);
}

TEST_CASE("chart::values empty documents and multi-document streams") {
    CHECK(parse_yaml("", "e").is_null());
    CHECK(parse_yaml("# only a comment\n", "e").is_null());
    auto docs = parse_yaml_documents("---\n# empty\n---\nkind: A\n---\n---\nkind: B\nx:\n  - 1\n", "m.yaml");
    REQUIRE(docs.size() == 2);
    CHECK(docs[0].find("kind")->text() == "A");
    CHECK(docs[0].find("kind")->origin().line == 4);
    CHECK(docs[1].find("kind")->text() == "B");
    CHECK(docs[1].find("kind")->origin().line == 7);
    CHECK(docs[1].at_path("x[0]")->origin().line == 9);
    // parse_yaml reads only the first document.
    CHECK(parse_yaml("a: 1\n---\nb: 2\n", "f").find("b") == nullptr);
}

TEST_CASE("chart::values anchors, aliases and merge keys") {
    auto v = parse_yaml("base: &b\n  tag: '1'\n  repo: r\n"
                        "one:\n  <<: *b\n  tag: '2'\n"
                        "two:\n  tag: '3'\n  <<: *b\n"
                        "copy: *b\n",
                        "a.yaml");
    CHECK(v.at_path("one.tag")->text() == "2");
    CHECK(v.at_path("one.repo")->text() == "r");
    CHECK(v.at_path("one.repo")->origin().values_path == "one.repo");
    CHECK(v.at_path("two.tag")->text() == "3");
    CHECK(v.at_path("two.repo")->text() == "r");
    CHECK(v.at_path("copy.repo")->origin().values_path == "copy.repo");
    CHECK(v.find("one")->find("<<") == nullptr);
}

TEST_CASE("chart::values alias bombs are refused") {
    std::string y = "a: &a [x, x, x, x, x, x, x, x, x, x]\n";
    char prev = 'a';
    for (char c = 'b'; c <= 'k'; ++c) {
        y += std::string(1, c) + ": &" + c + " [";
        for (int i = 0; i < 10; ++i) y += std::string(i ? ", *" : "*") + prev;
        y += "]\n";
        prev = c;
    }
    CHECK_THROWS_WITH_AS(parse_yaml(y, "bomb.yaml"), doctest::Contains("too many nodes"), aas::Error);
}

TEST_CASE("chart::values alias bombs are bounded in bytes as well as nodes") {
    // Issue 11: a 4 KiB string aliased x10 over five levels (a 4.6 KB file, 10^5 copies,
    // 400 MiB of text) has few nodes; it must fail fast naming the file and line.
    std::string y = "s: &s \"" + std::string(4096, 'x') + "\"\n";
    std::string prev = "s";
    for (std::string c : {"a", "b", "c", "d", "e"}) {
        y += c + ": &" + c + " [";
        for (int i = 0; i < 10; ++i) y += (i ? ", *" : "*") + prev;
        y += "]\n";
        prev = c;
    }
    CHECK(y.size() < 4700);
    auto t0 = std::chrono::steady_clock::now();
    CHECK_THROWS_WITH_AS(parse_yaml(y, "values.yaml"), doctest::Contains("after expanding aliases"), aas::Error);
    try {
        (void)parse_yaml(y, "values.yaml");
    } catch (const aas::Error& e) {
        std::string msg = e.what();
        CHECK(msg.rfind("values.yaml:", 0) == 0);
        CHECK(msg.find("MiB of text") != std::string::npos);
    }
    CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5));
    // The same shape at a size real values have is fine.
    std::string small = "s: &s \"abc\"\na: &a [*s, *s]\nb: [*a, *a]\n";
    CHECK(parse_yaml(small, "v.yaml").find("b")->items().size() == 2);
}

TEST_CASE("chart::values number forms follow go-yaml v2") {
    auto v = parse_yaml("a: .5\nb: 5.\nc: 1E-3\nd: +7\ne: 0o17\nf: 0b101\ng: 1_000\nh: 017\ni: 1.2.3\nj: 1e\n"
                        "k: .\nl: -.inf\nm: .nan\nn: 0x\no: 1.0e+3\np: '-'\n",
                        "n.yaml");
    for (const char* k : {"a", "b", "c", "d", "e", "f", "g", "h", "l", "m", "o"})
        CHECK_MESSAGE(v.find(k)->kind() == Kind::number, k);
    for (const char* k : {"i", "j", "k", "n", "p"}) CHECK_MESSAGE(v.find(k)->kind() == Kind::string, k);
    CHECK(v.find("g")->text() == "1_000");
}

TEST_CASE("chart::parse_yaml_documents terminates on input that loops yaml-cpp's LoadAll") {
    // Found by fuzz_values: YAML::LoadAll never returns on these bytes.
    std::string input("  \n,\002 ");
    try {
        (void)aas::chart::parse_yaml_documents(input, "fuzz.yaml");
    } catch (const aas::Error& e) {
        CHECK(std::string(e.what()).rfind("fuzz.yaml", 0) == 0);
    }
}

TEST_CASE("chart::parse_yaml_documents keeps the file's line numbers in every document") {
    auto docs = aas::chart::parse_yaml_documents("a: 1\n---\n# c\nb:\n  c: 2\n--- \nd: [x]\n---\n", "m.yaml");
    REQUIRE(docs.size() == 3);
    CHECK(docs[0].find("a")->origin().line == 1);
    CHECK(docs[1].at_path("b.c")->origin().line == 5);
    CHECK(docs[2].find("d")->items()[0].origin().line == 7);
    CHECK_THROWS_WITH_AS(aas::chart::parse_yaml_documents("a: 1\n---\nb: [\n", "m.yaml"), doctest::Contains("m.yaml:"),
                         aas::Error);
}
