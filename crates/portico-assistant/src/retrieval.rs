//! Tool retrieval: when a user has more tools enabled than the cap (default
//! [`DEFAULT_TOOL_CAP`]), a lexical retriever picks which ones the model sees.
//!
//! The retriever is BM25 (k1 = 1.2, b = 0.75) of the question against one document per tool,
//! made of the tool's name (each token counted three times), its server's name (twice) and its
//! description (once). The index is built per call: only the question's terms are counted, so a
//! call is linear in the total text of the tools, with one reused buffer per tokenizer and no
//! allocation per token.
//!
//! Tokenization (the same on both sides):
//! - text is split on anything that is not alphanumeric, except that `_`, `-` and apostrophes stay
//!   inside an identifier; apostrophes are dropped (`who's` → `whos`);
//! - an identifier is split into its snake_case, kebab-case and camelCase parts, lowercased
//!   (`catalog_get_catalog_entity` → catalog, get, catalog, entity; `listMcpServers` → list, mcp,
//!   servers; `HTTPServer` → http, server); when it has several parts the whole identifier is kept
//!   too, as its parts concatenated (`cataloggetcatalogentity`), so `list_mcp_servers`,
//!   `listMcpServers` and `ListMCPServers` are the same term, and `TypeScript` matches
//!   `typescript`;
//! - parts that are stop words (the, a, an, of, to, in, for, on, and, or, is, are, what, which,
//!   me, my, please, show, with, by, from, all) are dropped;
//! - every token goes through a light stemmer, see [`stem`].

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// How many tools the model sees at most when no cap is configured.
pub const DEFAULT_TOOL_CAP: usize = 40;

/// BM25 term-frequency saturation.
const K1: f64 = 1.2;
/// BM25 length normalization.
const B: f64 = 0.75;
/// Each token of a tool's name counts this many times.
const NAME_WEIGHT: u32 = 3;
/// Each token of a tool's server name counts this many times.
const SERVER_WEIGHT: u32 = 2;
/// Each token of a tool's description counts this many times.
const DESCRIPTION_WEIGHT: u32 = 1;

/// Words dropped from questions and tool documents.
const STOP_WORDS: &[&str] = &[
    "the", "a", "an", "of", "to", "in", "for", "on", "and", "or", "is", "are", "what", "which",
    "me", "my", "please", "show", "with", "by", "from", "all",
];

/// A tool as the retriever sees it. Borrowed, so that callers holding their tools in any shape
/// (MCP tool lists, built-in actions) can describe them without copying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ToolDoc<'a> {
    /// The tool's name as the model sees it, e.g. `catalog_get_catalog_entity`.
    pub name: &'a str,
    /// The tool's description.
    pub description: &'a str,
    /// The name of the MCP server serving the tool, e.g. `github`.
    pub server: &'a str,
}

/// The indexes into `tools` of the tools the model should see.
///
/// With `tools.len() <= cap`, all of them in their order. Otherwise exactly `cap` of them: the
/// highest BM25 scores of `question` against each tool first, in descending score order, ties
/// (including the tools scoring 0, which fill the remaining slots) in their original order.
pub fn select(question: &str, tools: &[ToolDoc<'_>], cap: usize) -> Vec<usize> {
    if tools.len() <= cap {
        return (0..tools.len()).collect();
    }
    if cap == 0 {
        return Vec::new();
    }
    let scores = scores(question, tools);
    let by_rank = |a: &usize, b: &usize| scores[*b].total_cmp(&scores[*a]).then(a.cmp(b));
    let mut order: Vec<usize> = (0..tools.len()).collect();
    // `by_rank` is a total order, so the first `cap` after the partition are the top `cap`.
    order.select_nth_unstable_by(cap - 1, by_rank);
    order.truncate(cap);
    order.sort_unstable_by(by_rank);
    order
}

/// The BM25 score of `question` against each of `tools` (same order); 0 for a tool sharing no
/// term with the question. Each distinct question term counts once.
pub fn scores(question: &str, tools: &[ToolDoc<'_>]) -> Vec<f64> {
    let n = tools.len();
    let mut tokenizer = Tokenizer::default();
    let mut terms: HashMap<String, usize, BuildHasherDefault<Fnv>> = HashMap::default();
    tokenizer.for_each(question, |t| {
        if !terms.contains_key(t) {
            let next = terms.len();
            terms.insert(t.to_owned(), next);
        }
    });
    let q = terms.len();
    if q == 0 || n == 0 {
        return vec![0.0; n];
    }

    // Weighted frequency of each question term in each tool (row-major, one row per tool) and
    // each tool's weighted length.
    let mut tf = vec![0u32; n * q];
    let mut lengths = vec![0u32; n];
    for ((tool, row), length) in tools.iter().zip(tf.chunks_exact_mut(q)).zip(&mut lengths) {
        for (text, weight) in [
            (tool.name, NAME_WEIGHT),
            (tool.server, SERVER_WEIGHT),
            (tool.description, DESCRIPTION_WEIGHT),
        ] {
            tokenizer.for_each(text, |t| {
                *length += weight;
                if let Some(&j) = terms.get(t) {
                    row[j] += weight;
                }
            });
        }
    }

    let mut df = vec![0u32; q];
    for row in tf.chunks_exact(q) {
        for (d, &f) in df.iter_mut().zip(row) {
            *d += u32::from(f > 0);
        }
    }
    let total = n as f64;
    let idf: Vec<f64> = df
        .iter()
        .map(|&d| {
            let d = f64::from(d);
            (1.0 + (total - d + 0.5) / (d + 0.5)).ln()
        })
        .collect();
    let avg_length = lengths.iter().map(|&l| f64::from(l)).sum::<f64>() / total;

    tf.chunks_exact(q)
        .zip(&lengths)
        .map(|(row, &length)| {
            let norm = if avg_length > 0.0 {
                K1 * (1.0 - B + B * f64::from(length) / avg_length)
            } else {
                K1
            };
            row.iter()
                .zip(&idf)
                .filter(|(f, _)| **f > 0)
                .map(|(&f, idf)| {
                    let f = f64::from(f);
                    idf * f * (K1 + 1.0) / (f + norm)
                })
                .sum()
        })
        .collect()
}

/// The light stemmer applied to every token, in place:
/// 1. for words of more than 3 characters, a trailing `ies` becomes `y` (`repositories` →
///    `repository`), else a trailing `s` not part of `ss` is dropped (`files` → `file`);
/// 2. for words (still) of more than 5 characters, a trailing `ing` is dropped (`searching` →
///    `search`);
/// 3. for words (still) of more than 3 characters, a trailing `e` is dropped.
///
/// Steps 1 and 3 together strip a plural `es` (`searches` → `search`, `boxes` → `box`) while
/// `files`/`file`, `services`/`service` and `issues`/`issue` keep meeting (a bare `es` rule
/// would turn `files` into `fil` but leave `file` alone); step 3 also lets `creating` meet
/// `create`.
pub fn stem(word: &mut String) {
    let mut chars = word.chars().count();
    if chars > 3 {
        if word.ends_with("ies") {
            word.truncate(word.len() - 3);
            word.push('y');
            chars -= 2;
        } else if word.ends_with('s') && !word.ends_with("ss") {
            word.truncate(word.len() - 1);
            chars -= 1;
        }
    }
    if chars > 5 && word.ends_with("ing") {
        word.truncate(word.len() - 3);
        chars -= 3;
    }
    if chars > 3 && word.ends_with('e') {
        word.truncate(word.len() - 1);
    }
}

/// FNV-1a, for the per-token lookups of short terms in the question's terms (a few keys chosen
/// by the user, so flooding is no concern); a third faster than the default SipHash here.
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

fn is_stop_word(word: &str) -> bool {
    STOP_WORDS.contains(&word)
}

/// What the previous character of an identifier part was, for camelCase boundaries.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Prev {
    /// Start of a part.
    None,
    /// An uppercase letter.
    Upper,
    /// Anything else alphanumeric: a lowercase or uncased letter, or a digit.
    Other,
}

/// Reusable buffers for tokenizing; see the module docs for the rules.
#[derive(Default)]
struct Tokenizer {
    /// The current identifier part, lowercased.
    part: String,
    /// The current identifier's parts, concatenated.
    whole: String,
    /// The token handed out.
    token: String,
}

impl Tokenizer {
    /// Calls `emit` with each token of `text`, in order.
    fn for_each(&mut self, text: &str, mut emit: impl FnMut(&str)) {
        let mut parts = 0usize;
        let mut prev = Prev::None;
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            if c.is_alphanumeric() {
                if c.is_uppercase() {
                    let next_lower = chars.peek().is_some_and(|n| n.is_lowercase());
                    if prev == Prev::Other || (prev == Prev::Upper && next_lower) {
                        self.end_part(&mut parts, &mut emit);
                    }
                    prev = Prev::Upper;
                } else {
                    prev = Prev::Other;
                }
                if c.is_ascii() {
                    self.part.push(c.to_ascii_lowercase());
                } else {
                    self.part.extend(c.to_lowercase());
                }
            } else if c == '\'' || c == '\u{2019}' {
                // Dropped, inside a word or not.
            } else if c == '_' || c == '-' {
                self.end_part(&mut parts, &mut emit);
                prev = Prev::None;
            } else {
                self.end_identifier(&mut parts, &mut emit);
                prev = Prev::None;
            }
        }
        self.end_identifier(&mut parts, &mut emit);
    }

    /// Emits the current part (unless empty or a stop word) and adds it to the identifier.
    fn end_part(&mut self, parts: &mut usize, emit: &mut impl FnMut(&str)) {
        if self.part.is_empty() {
            return;
        }
        *parts += 1;
        self.whole.push_str(&self.part);
        if !is_stop_word(&self.part) {
            self.token.clear();
            self.token.push_str(&self.part);
            stem(&mut self.token);
            emit(&self.token);
        }
        self.part.clear();
    }

    /// Ends the current part, then emits the whole identifier when it had several parts.
    fn end_identifier(&mut self, parts: &mut usize, emit: &mut impl FnMut(&str)) {
        self.end_part(parts, emit);
        if *parts > 1 {
            stem(&mut self.whole);
            emit(&self.whole);
        }
        self.whole.clear();
        *parts = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(text: &str) -> Vec<String> {
        let mut out = Vec::new();
        Tokenizer::default().for_each(text, |t| out.push(t.to_owned()));
        out
    }

    fn stemmed(word: &str) -> String {
        let mut w = word.to_owned();
        stem(&mut w);
        w
    }

    fn doc<'a>(server: &'a str, name: &'a str, description: &'a str) -> ToolDoc<'a> {
        ToolDoc {
            name,
            description,
            server,
        }
    }

    /// 63 tools from six servers, descriptions in the style of the real servers.
    #[rustfmt::skip]
    fn realistic() -> Vec<ToolDoc<'static>> {
        vec![
            // GitHub's MCP server.
            doc("github", "search_code", "Fast and precise code search across all GitHub repositories using GitHub's native search engine. Best for finding exact symbols, functions, classes, or specific code patterns."),
            doc("github", "search_repositories", "Search for GitHub repositories by name, description, readme, topics or other metadata."),
            doc("github", "search_issues", "Search for issues in GitHub repositories using issues search syntax already scoped to is:issue."),
            doc("github", "search_pull_requests", "Search for pull requests in GitHub repositories using issues search syntax already scoped to is:pr."),
            doc("github", "search_users", "Find GitHub users by username, real name, or other profile information."),
            doc("github", "get_file_contents", "Get the contents of a file or directory from a GitHub repository."),
            doc("github", "create_or_update_file", "Create or update a single file in a GitHub repository. If updating, you must provide the SHA of the file you want to update."),
            doc("github", "push_files", "Push multiple files to a GitHub repository in a single commit."),
            doc("github", "delete_file", "Delete a file from a GitHub repository."),
            doc("github", "create_repository", "Create a new GitHub repository in your account or an organization."),
            doc("github", "fork_repository", "Fork a GitHub repository to your account or an organization."),
            doc("github", "create_branch", "Create a new branch in a GitHub repository."),
            doc("github", "list_branches", "List branches in a GitHub repository."),
            doc("github", "list_commits", "Get the list of commits of a branch in a GitHub repository."),
            doc("github", "get_commit", "Get details for a commit from a GitHub repository, including the diff."),
            doc("github", "create_issue", "Create a new issue in a GitHub repository."),
            doc("github", "get_issue", "Get details of a specific issue in a GitHub repository."),
            doc("github", "list_issues", "List issues in a GitHub repository, filtered by state, labels or assignee."),
            doc("github", "update_issue", "Update an existing issue in a GitHub repository."),
            doc("github", "add_issue_comment", "Add a comment to a specific issue in a GitHub repository."),
            doc("github", "create_pull_request", "Create a new pull request in a GitHub repository."),
            doc("github", "get_pull_request", "Get details of a specific pull request in a GitHub repository."),
            doc("github", "list_pull_requests", "List pull requests in a GitHub repository."),
            doc("github", "merge_pull_request", "Merge a pull request in a GitHub repository."),
            doc("github", "get_pull_request_files", "Get the files changed in a specific pull request."),
            doc("github", "list_workflow_runs", "List workflow runs of a GitHub Actions workflow in a repository."),
            doc("github", "get_me", "Get details of the authenticated GitHub user."),
            doc("github", "list_notifications", "List notifications for the authenticated GitHub user."),
            // An internal code search server.
            doc("code-search", "code_search", "Search source code across all indexed repositories with regular expressions, filtered by language (e.g. TypeScript, Go, Java), repository and path; returns matching lines with context."),
            doc("code-search", "file_search", "Find files by name or path pattern (e.g. **/*.ts) across indexed repositories."),
            doc("code-search", "symbol_search", "Find definitions of and references to a symbol (function, class, interface) across indexed repositories."),
            doc("code-search", "list_indexed_repositories", "List the repositories in the index and when each was last indexed."),
            doc("code-search", "read_file", "Read a file at a revision of an indexed repository."),
            // Jira.
            doc("jira", "create_issue", "Create a Jira issue in a project, with summary, description, issue type and assignee."),
            doc("jira", "search_issues", "Search Jira issues with JQL, e.g. project = PAY AND status = \"In Progress\"."),
            doc("jira", "get_issue", "Get a Jira issue by key, with its fields and comments."),
            doc("jira", "update_issue", "Update the fields of a Jira issue."),
            doc("jira", "transition_issue", "Move a Jira issue to another status through a workflow transition."),
            doc("jira", "add_comment", "Add a comment to a Jira issue."),
            doc("jira", "list_projects", "List the Jira projects visible to the user."),
            doc("jira", "get_project", "Get a Jira project by key, with its components and versions."),
            // Portico's own actions.
            doc("mcp-actions", "catalog_get_catalog_entity", "Returns one entity of the software catalog by name, optionally narrowed by kind and namespace. Fails when no entity, or more than one, matches."),
            doc("mcp-actions", "catalog_query_catalog_entities", "Finds entities in the software catalog. `filter` is an object of field path to value(s) (all must match; several values mean any of them) or a list of such objects (any may match), e.g. {\"kind\": \"component\", \"spec.lifecycle\": \"production\"}; `fields` picks what to return; results come in pages (`limit`, then `cursor` = nextPageCursor)."),
            doc("mcp-actions", "catalog_validate_entity", "Checks an entity (as JSON) against the catalog's rules without storing it, and lists every problem."),
            doc("mcp-actions", "catalog_register_entity", "Registers a catalog location (a URL, or a file on Portico's host) and reads the entities in it."),
            doc("mcp-actions", "catalog_unregister_entity", "Removes a registered location, by id or by target, and the entities that came only from it."),
            doc("mcp-actions", "catalog_list_mcp_servers", "Lists the MCP servers registered in the catalog: whether each is available (and why not), its transport and URL, and how Portico authenticates to it."),
            doc("mcp-actions", "auth_who_am_i", "Returns the caller's user entity ref and ownership entity refs."),
            // PagerDuty.
            doc("pagerduty", "list_incidents", "List PagerDuty incidents, filtered by status, service or team."),
            doc("pagerduty", "get_incident", "Get a PagerDuty incident by id, with its timeline."),
            doc("pagerduty", "create_incident", "Trigger a new PagerDuty incident on a service."),
            doc("pagerduty", "list_services", "List PagerDuty services, optionally filtered by team or name."),
            doc("pagerduty", "get_service", "Get a PagerDuty service by id, with its escalation policy and integrations."),
            doc("pagerduty", "list_oncalls", "List who is on call for an escalation policy or schedule."),
            doc("pagerduty", "list_schedules", "List on-call schedules."),
            doc("pagerduty", "list_escalation_policies", "List escalation policies and the teams they belong to."),
            // Slack.
            doc("slack", "slack_post_message", "Post a new message to a Slack channel."),
            doc("slack", "slack_list_channels", "List public channels in the workspace."),
            doc("slack", "slack_get_channel_history", "Get recent messages from a channel."),
            doc("slack", "slack_search_messages", "Search messages across Slack channels, with modifiers like in:#channel and from:@user."),
            doc("slack", "slack_reply_to_thread", "Reply to a specific message thread in a channel."),
            doc("slack", "slack_get_users", "List users in the workspace with their basic profile information."),
            doc("slack", "slack_add_reaction", "Add a reaction emoji to a message."),
        ]
    }

    fn names<'a>(tools: &[ToolDoc<'a>], picked: &[usize]) -> Vec<(&'a str, &'a str)> {
        picked
            .iter()
            .map(|&i| (tools[i].server, tools[i].name))
            .collect()
    }

    #[test]
    fn under_or_at_the_cap_all_tools_in_order() {
        let tools = realistic();
        let all: Vec<usize> = (0..tools.len()).collect();
        assert_eq!(select("anything at all", &tools, tools.len()), all);
        assert_eq!(
            select("anything at all", &tools, DEFAULT_TOOL_CAP * 10),
            all
        );
        assert_eq!(select("", &tools[..3], 40), vec![0, 1, 2]);
        assert_eq!(select("q", &[], 0), Vec::<usize>::new());
    }

    #[test]
    fn cap_zero_is_empty() {
        let tools = realistic();
        assert!(select("search for code", &tools, 0).is_empty());
    }

    #[test]
    fn over_the_cap_exactly_cap_tools_distinct_in_descending_score() {
        let tools = realistic();
        let question = "list the open pull requests of the payments repository";
        let scores = scores(question, &tools);
        for cap in [1, 5, 17, 40, tools.len() - 1] {
            let picked = select(question, &tools, cap);
            assert_eq!(picked.len(), cap);
            let mut distinct = picked.clone();
            distinct.sort_unstable();
            distinct.dedup();
            assert_eq!(distinct.len(), cap);
            for w in picked.windows(2) {
                assert!(
                    scores[w[0]] > scores[w[1]] || (scores[w[0]] == scores[w[1]] && w[0] < w[1]),
                    "{w:?}"
                );
            }
            // Nothing left out scores higher than the lowest picked.
            let lowest = scores[*picked.last().unwrap()];
            for i in (0..tools.len()).filter(|i| !picked.contains(i)) {
                assert!(scores[i] <= lowest);
            }
        }
        assert_eq!(
            names(&tools, &select(question, &tools, 1)),
            [("github", "list_pull_requests")]
        );
    }

    #[test]
    fn code_search_question_picks_code_search_tools_first() {
        let tools = realistic();
        let picked = select(
            "search for TypeScript files that define Backstage plugins",
            &tools,
            5,
        );
        let picked = names(&tools, &picked);
        assert_eq!(picked.len(), 5);
        assert_eq!(picked[0], ("code-search", "code_search"), "{picked:?}");
        assert_eq!(picked[1], ("code-search", "file_search"), "{picked:?}");
        // The code search server's tools first, then only code hosting ones: no issue trackers,
        // chat, paging or catalog.
        assert!(
            picked[..3]
                .iter()
                .all(|(server, _)| *server == "code-search"),
            "{picked:?}"
        );
        assert!(
            picked
                .iter()
                .all(|(server, _)| *server == "code-search" || *server == "github"),
            "{picked:?}"
        );
    }

    #[test]
    fn ownership_question_picks_catalog_tools() {
        let tools = realistic();
        let question = "who owns the payments service in the catalog";
        let top5 = names(&tools, &select(question, &tools, 5));
        assert!(
            top5.contains(&("mcp-actions", "catalog_get_catalog_entity")),
            "{top5:?}"
        );
        let catalog = top5
            .iter()
            .filter(|(_, n)| n.starts_with("catalog_"))
            .count();
        assert!(catalog >= 2, "{top5:?}");
        // Every catalog tool makes the top 10, and nothing from code hosting, code search, issue
        // trackers or chat does.
        let top10 = names(&tools, &select(question, &tools, 10));
        let catalog = top10
            .iter()
            .filter(|(_, n)| n.starts_with("catalog_"))
            .count();
        assert_eq!(catalog, 6, "{top10:?}");
        assert!(
            top10
                .iter()
                .all(|(s, _)| *s == "mcp-actions" || *s == "pagerduty"),
            "{top10:?}"
        );
    }

    #[test]
    fn splits_snake_kebab_and_camel_case_keeping_the_whole() {
        assert_eq!(
            tokens("catalog_get_catalog_entity"),
            [
                "catalog",
                "get",
                "catalog",
                "entity",
                "cataloggetcatalogentity"
            ]
        );
        assert_eq!(
            tokens("listMcpServers"),
            ["list", "mcp", "server", "listmcpserver"]
        );
        assert_eq!(tokens("list-mcp-servers"), tokens("listMcpServers"));
        assert_eq!(tokens("ListMCPServers"), tokens("listMcpServers"));
        assert_eq!(tokens("HTTPServer"), ["http", "server", "httpserver"]);
        assert_eq!(tokens("TypeScript"), ["typ", "script", "typescript"]);
        assert_eq!(tokens("getV2Users"), ["get", "v2", "user", "getv2user"]);
        // Punctuation splits identifiers; a single-part word is not repeated.
        assert_eq!(
            tokens("github.search_code, (Slack)"),
            ["github", "search", "cod", "searchcod", "slack"]
        );
        assert_eq!(tokens("who's"), ["who"]);
        assert_eq!(tokens("Ünïcode ÉTÉ"), ["ünïcod", "été"]);
        assert!(tokens("  ,;_-- ").is_empty());
    }

    #[test]
    fn camel_and_snake_case_questions_match_tool_names() {
        let tools = realistic();
        for question in ["listMcpServers", "list_mcp_servers", "ListMCPServers"] {
            let picked = select(question, &tools, 1);
            assert_eq!(
                names(&tools, &picked),
                [("mcp-actions", "catalog_list_mcp_servers")]
            );
        }
        let picked = select("getFileContents", &tools, 1);
        assert_eq!(names(&tools, &picked), [("github", "get_file_contents")]);
    }

    #[test]
    fn stemming() {
        assert_eq!(stemmed("repositories"), "repository");
        assert_eq!(stemmed("repository"), "repository");
        assert_eq!(stemmed("files"), stemmed("file"));
        assert_eq!(stemmed("services"), stemmed("service"));
        assert_eq!(stemmed("issues"), stemmed("issue"));
        assert_eq!(stemmed("searches"), "search");
        assert_eq!(stemmed("searching"), "search");
        assert_eq!(stemmed("creating"), stemmed("create"));
        assert_eq!(stemmed("class"), "class");
        assert_eq!(stemmed("classes"), "class");
        // Short words are left alone.
        assert_eq!(stemmed("bus"), "bus");
        assert_eq!(stemmed("ties"), "ty");
        assert_eq!(stemmed("ping"), "ping");
        assert_eq!(stemmed("thing"), "thing");
        assert_eq!(stemmed("use"), "use");
    }

    #[test]
    fn plural_question_matches_singular_tool() {
        let tools = [
            doc("a", "post_message", "Send a chat message."),
            doc("a", "fork", "Fork a repository."),
            doc("a", "page", "Page the on-call engineer."),
        ];
        assert_eq!(select("repositories", &tools, 1), [1]);
        assert_eq!(select("messages", &tools, 1), [0]);
        assert_eq!(select("paging", &tools, 1), [2]);
        let s = scores("repositories", &tools);
        assert!(s[1] > 0.0 && s[0] == 0.0 && s[2] == 0.0, "{s:?}");
        assert_eq!(scores("repositories", &tools), scores("repository", &tools));
    }

    #[test]
    fn stop_words_are_ignored() {
        assert_eq!(tokens("Show me all of the issues, please"), ["issu"]);
        assert_eq!(tokens("list_all_issues"), ["list", "issu", "listallissu"]);
        let tools = realistic();
        assert_eq!(
            scores("what are the open issues in my repositories", &tools),
            scores("open issues repositories", &tools)
        );
        // A question made only of stop words ranks nothing: the first tools, in order.
        let picked = select("what is the for of which", &tools, 4);
        assert_eq!(picked, [0, 1, 2, 3]);
        // Stop words in tool documents don't match either.
        let tools = [doc("s", "one", "The thing"), doc("s", "two", "thing")];
        assert_eq!(scores("the", &tools), [0.0, 0.0]);
    }

    #[test]
    fn ties_in_original_order_and_zero_scores_fill_in_order() {
        let tools = [
            doc("s", "alpha", "first"),
            doc("s", "deploy", "Deploys a service."),
            doc("s", "beta", "second"),
            doc("s", "deploy", "Deploys a service."),
            doc("s", "gamma", "third"),
            doc("s", "delta", "fourth"),
        ];
        assert_eq!(select("deploy", &tools, 4), [1, 3, 0, 2]);
        assert_eq!(select("deploy", &tools, 5), [1, 3, 0, 2, 4]);
        assert_eq!(select("nothing matches", &tools, 3), [0, 1, 2]);
        // Same answer every time.
        let realistic = realistic();
        let first = select("get the file", &realistic, 12);
        for _ in 0..10 {
            assert_eq!(select("get the file", &realistic, 12), first);
        }
    }

    #[test]
    fn name_outweighs_server_outweighs_description() {
        let tools = [
            doc("tools", "other", "Mentions incidents in passing."),
            doc("incidents", "other", "Something else."),
            doc("tools", "incidents", "Something else."),
        ];
        assert_eq!(select("incident", &tools, 2), [2, 1]);
        let s = scores("incident", &tools);
        assert!(s[2] > s[1] && s[1] > s[0] && s[0] > 0.0, "{s:?}");
    }

    #[test]
    fn many_tools() {
        // 500 tools of a realistic length: stays linear (a smoke test of the shape, not a bench).
        let base = realistic();
        let names: Vec<String> = (0..500)
            .map(|i| format!("{}_{i}", base[i % base.len()].name))
            .collect();
        let tools: Vec<ToolDoc<'_>> = names
            .iter()
            .enumerate()
            .map(|(i, name)| ToolDoc {
                name,
                ..base[i % base.len()]
            })
            .collect();
        let picked = select(
            "search for TypeScript files that define Backstage plugins",
            &tools,
            40,
        );
        assert_eq!(picked.len(), 40);
        assert!(tools[picked[0]].server == "code-search");
    }
}
