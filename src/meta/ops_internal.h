// Helpers shared by the operation files (not part of the service's API).
#pragma once

#include <string>

#include "common/status.h"
#include "meta/meta_service.h"

namespace stria::meta {

inline constexpr uint64_t kDefaultStripe = 1 << 20;
// Files imported from a bucket, unless their directory says otherwise.
inline constexpr uint64_t kBucketStripe = 8 << 20;

// lookup.cc: name in dir, after checking that dir is a directory the caller
// may search.
Result<InodeRecord> Child(Ctx& c, Txn& t, const InodeRecord& dir, const std::string& name,
                          const proto::Cred& cred);
// create.cc: checks that parent is a live directory the caller may add name
// to and that name is free; returns the parent's record.
Result<InodeRecord> PrepareAdd(Ctx& c, Txn& t, uint64_t parent, const std::string& name,
                               const proto::Cred& cred, const char* what);
// create.cc: a fresh inode (number allocated in t) owned by cred, in dir.
Result<InodeRecord> NewInode(Ctx& c, Txn& t, const InodeRecord& dir, proto::FileType type,
                             uint32_t mode, const proto::Cred& cred);
// setattr.cc: file rec gets a new object id (nothing in the stores yet);
// its old objects are queued as garbage.
Status FreshObjects(Ctx& c, Txn& t, InodeRecord& rec);
// setattr.cc: size 0 without touching the stores: a new object id (always:
// the stores may hold writes meta has not seen), the old objects queued as
// garbage.
Status TruncateToZero(Ctx& c, Txn& t, InodeRecord& rec, const proto::Cred& cred);
// open_close.cc: registers an open of ino by session (0: none).
Status OpenForSession(Ctx& c, uint64_t session, uint64_t ino);
// unlink.cc: true when directory ino has no entries (seen through t).
Result<bool> DirIsEmpty(Ctx& c, Txn& t, uint64_t ino);

// repo_import.cc: EREMOTE when dir is under a link and its bucket level
// was never imported (the client imports it, then asks again).
Status CheckListed(Ctx& c, Txn& t, const InodeRecord& dir);
// repo_import.cc: a new inode named name in dir joins dir's link, if any
// (new files start dirty: they are not in the bucket).
void InheritRepo(const InodeRecord& dir, const std::string& name, InodeRecord& child);
// repo_import.cc: EXDEV when a rename would move ino between links, or
// between a link and the rest of the namespace.
Status CheckSameRepo(const InodeRecord& from_dir, const InodeRecord& to_dir);
// meta_service.cc: a file's state under a link, as its record says it
// now (RS_NONE when not under one).
proto::RepoState RepoStateOf(const InodeRecord& r);
// repo_import.cc: the linked directory above inode rec (rec itself when it
// is the linked one), if its link still exists.
Result<std::optional<InodeRecord>> LinkRoot(Ctx& c, Txn& t, const InodeRecord& rec);
// repo_hydrate.cc: where a released file's bytes are (nullopt: the file is
// not released). EIO when its link is gone.
Result<std::optional<proto::RepoSource>> SourceOf(Ctx& c, Txn& t, const InodeRecord& file);
// repo_hydrate.cc: ENODATA when the data of file is not all in Stria: a
// change of its data would mix with bytes still to come from the bucket.
Status CheckHydrated(const InodeRecord& file, const char* what);
// repo_hydrate.cc: records stripe objects of a released file as fetched;
// the file becomes resident when all are. Stale reports change nothing.
Status ApplyHydrated(Ctx& c, Txn& t, const proto::RepoHydrated& h);
// repo_hydrate.cc: file rec takes the bucket's new content (size, ETag,
// mtime): fresh, empty objects (the old ones freed), released, not dirty.
Status Rebase(Ctx& c, Txn& t, InodeRecord& rec, uint64_t size, const std::string& etag, int64_t mtime_ns);
// lookup.cc: whether a LOOKUP (and a READ_DIR asking for layouts) hands
// out file rec's layout.
bool LookupGivesLayout(const InodeRecord& rec);
// repo_import.cc: creates the name of bucket object (or prefix) o in dir
// unless it exists; its key is prefix + o's name. False when o's name
// cannot be a file name.
Result<bool> ImportObject(Ctx& c, Txn& t, InodeRecord& dir, const std::string& prefix, const InodeRecord& root,
                          const proto::RepoObject& o, int64_t now);
// repo_export.cc: file rec loses a name: when that was its last and its
// link exports deletions, its bucket object is to be deleted at export.
Status NoteRepoDeletion(Ctx& c, Txn& t, const InodeRecord& rec);
// A file renamed under a link: the bucket has it under its old key (if it
// was ever there). It becomes dirty, so that export sends it under its new
// name; when its old name is left empty (vacated), export_deletes has the
// old key deleted too. Released files are refused before (their key is
// where their data is): ENODATA from CheckRenamable, and libstria hydrates.
Status NoteRepoRename(Ctx& c, Txn& t, InodeRecord& rec, bool vacated);
Status CheckRenamable(const InodeRecord& rec, const std::string& name);
// A directory renamed under a link: its files stay clean, at their old
// keys (no walk of the subtree here); the link's rename count tells
// stria-mover that an export walk is due.
Status NoteRepoDirRename(Ctx& c, Txn& t, const InodeRecord& dir);
// repo_link.cc: files and bytes by state under link root.
Result<proto::RepoCounts> Counts(Txn& t, uint64_t root);

}  // namespace stria::meta
