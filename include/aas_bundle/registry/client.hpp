#pragma once
// A client for the OCI distribution API (Docker registry HTTP API v2), over libcurl.
//
// Every manifest and blob is verified against its digest while it streams; a mismatch is
// an error, never a silent success. Requests that fail for a temporary reason (connection
// errors, timeouts, stalls, HTTP 5xx, 429) are retried with exponential backoff and
// jitter, honouring Retry-After; downloads resume with a Range request where the
// registry supports it, uploads resume from the offset the registry reports.
// Authentication follows the registry's challenge: anonymous, Basic, or Bearer tokens
// fetched from the challenge's realm with the scopes each request needs. Credentials and
// tokens are never logged and never sent to another host after a redirect.

#include "aas_bundle/auth/auth.hpp"
#include "aas_bundle/oci/manifest.hpp"
#include "aas_bundle/util/error.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace aas::registry {

struct Options {
    bool plain_http = false; ///< speak HTTP instead of HTTPS
    bool insecure = false;   ///< HTTPS without certificate verification
    std::string ca_file;     ///< extra CA bundle (PEM) for this registry
    std::optional<auth::Credential> credential;
    int max_attempts = 5; ///< tries per request, the first included
    std::chrono::milliseconds base_delay{500};
    std::chrono::milliseconds max_delay{30000};
    std::chrono::seconds connect_timeout{15};
    std::chrono::seconds stall_timeout{30}; ///< a transfer with no progress for this long fails
    std::uint64_t chunk_size = 32u << 20;   ///< bytes per PATCH when uploading a blob
    /// Warnings (a retry after a temporary failure, an upload started again), called from
    /// any thread, secrets not yet redacted; unset, the client prints nothing.
    std::function<void(const std::string&)> on_warning;
};

/// One error entry of a registry's `{"errors":[{"code","message","detail"}]}` body.
struct ErrorEntry {
    std::string code;
    std::string message;
};

/// A failed request: what was attempted (method, redacted URL), the HTTP status (0 when
/// no answer came), the registry's own error codes, and whether a retry may help.
class RegistryError : public aas::Error {
public:
    RegistryError(std::string method, std::string url, long status, std::vector<ErrorEntry> errors, std::string detail,
                  bool temporary, std::chrono::seconds retry_after = {});

    const std::string& method() const { return method_; }
    const std::string& url() const { return url_; }
    long status() const { return status_; }
    const std::vector<ErrorEntry>& errors() const { return errors_; }
    bool temporary() const { return temporary_; }
    std::chrono::seconds retry_after() const { return retry_after_; }
    /// True when the registry said one of `code` (e.g. "MANIFEST_UNKNOWN").
    bool has_code(std::string_view code) const;

private:
    std::string method_, url_;
    long status_;
    std::vector<ErrorEntry> errors_;
    bool temporary_;
    std::chrono::seconds retry_after_;
};

/// Where downloaded bytes go. `reset` drops what was written (the download restarts).
class BlobSink {
public:
    virtual ~BlobSink() = default;
    virtual void write(const char* data, std::size_t n) = 0;
    virtual void reset() = 0;
};

/// Where uploaded bytes come from: random access, so that an upload can resume.
class BlobSource {
public:
    virtual ~BlobSource() = default;
    virtual std::uint64_t size() const = 0;
    virtual std::size_t read_at(void* out, std::size_t n, std::uint64_t offset) const = 0;
};

enum class PushOutcome { uploaded, skipped, mounted };

/// Called as bytes move, from any worker thread.
using ByteCallback = std::function<void(std::uint64_t bytes)>;

class Client {
public:
    /// `registry` is "host[:port]" as in an image reference ("docker.io" is reached at
    /// registry-1.docker.io).
    Client(std::string registry, Options options);
    ~Client();
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;

    const std::string& registry() const;
    const Options& options() const;
    /// "https://host:port" or "http://host:port".
    std::string base_url() const;

    /// GET /v2/: the registry answers and speaks the v2 API; learns its auth scheme.
    void ping();

    /// Fetches a manifest by tag or digest, with every supported media type accepted.
    /// Verifies the digest when `reference` is one, and Docker-Content-Digest when sent.
    oci::RawManifest get_manifest(std::string_view repository, std::string_view reference);

    /// HEAD of a manifest: its descriptor, or nullopt when the registry does not have it.
    std::optional<oci::Descriptor> head_manifest(std::string_view repository, std::string_view reference);

    /// PUT of a manifest's exact bytes under `reference` (a tag or its digest). Checks the
    /// digest the registry reports.
    void put_manifest(std::string_view repository, std::string_view reference, const oci::RawManifest& m);

    /// True when the repository has the blob.
    bool blob_exists(std::string_view repository, const oci::Digest& digest);

    /// Streams a blob into `sink`, verifying size and digest; resumes after faults.
    void fetch_blob(std::string_view repository, const oci::Descriptor& blob, BlobSink& sink,
                    const ByteCallback& on_bytes = {});

    /// The one decision before a blob's bytes move: HEAD of the blob in `repository`
    /// (skipped when it holds it), else a cross-repository mount (mount_blob) from each
    /// repository of `mount_from` in turn (mounted at the first that works; `repository`
    /// itself is passed over). nullopt: the bytes must be uploaded (upload_blob).
    std::optional<PushOutcome> place_blob(std::string_view repository, const oci::Descriptor& blob,
                                          const std::vector<std::string>& mount_from = {});

    /// Uploads a blob that place_blob found missing (no HEAD first): POST, PATCH in chunks
    /// of `Options::chunk_size`, PUT ?digest=. After a fault, asks the registry how much it
    /// holds (GET of the upload URL, `Range`) and resumes from there, always following the
    /// latest `Location`.
    void upload_blob(std::string_view repository, const oci::Descriptor& blob, const BlobSource& source,
                     const ByteCallback& on_bytes = {});

    /// place_blob (no mount) then, when the repository lacks the blob, upload_blob.
    PushOutcome push_blob(std::string_view repository, const oci::Descriptor& blob, const BlobSource& source,
                          const ByteCallback& on_bytes = {});

    /// Proves that pushing to `repository` is allowed: opens a blob upload
    /// (`POST …/blobs/uploads/`) and cancels it (`DELETE` of its Location), leaving nothing
    /// behind. Throws RegistryError (401 credentials refused, 403 denied, 404 NAME_UNKNOWN
    /// for a missing Harbor project, …) otherwise.
    void check_push(std::string_view repository);

    /// Cross-repository mount (`POST …/blobs/uploads/?mount=DIGEST&from=REPO`) of a blob
    /// that `from_repository` of this registry holds. True when mounted; false when the
    /// registry would not (the upload it opened instead is cancelled).
    bool mount_blob(std::string_view repository, const oci::Descriptor& blob, std::string_view from_repository);

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

} // namespace aas::registry
