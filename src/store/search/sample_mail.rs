//! Made-up but realistic campus mail for the search measurements (the
//! ignored `search::bench` test and `examples/webmail_bench.rs`, which
//! includes this file by path): Korean subjects and bodies with words
//! written together as Korean does, a few hundred senders, dates over three
//! years. Deterministic: message `n` is always the same bytes. Not part of
//! the product (compiled only into tests and the example).
//!
//! Planted words, so queries have known answers: "특별장학생선발" in one
//! message of 10,000 (n % 10,000 == 7), "공지" in about a third of the
//! subjects, the sender "김민준" in one message of 200.

const WORDS: &[&str] = &[
    "학기",
    "수강",
    "신청",
    "장학금",
    "도서관",
    "기숙사",
    "회의",
    "과제",
    "시험",
    "성적",
    "등록금",
    "졸업",
    "세미나",
    "연구실",
    "동아리",
    "학생",
    "교수",
    "강의",
    "일정",
    "변경",
    "안내",
    "제출",
    "마감",
    "확인",
    "부탁",
    "드립니다",
    "감사합니다",
    "오늘",
    "내일",
    "다음",
    "주",
    "월요일",
    "금요일",
    "오전",
    "오후",
    "강의실",
    "건물",
    "학과",
    "사무실",
    "연락",
    "바랍니다",
    "참석",
    "자료",
    "발표",
    "보고서",
    "논문",
    "실험",
    "결과",
    "프로젝트",
    "팀",
    "모임",
    "행사",
    "축제",
    "체육대회",
    "봉사",
    "활동",
    "신입생",
    "오리엔테이션",
    "휴강",
    "보강",
    "출석",
    "점수",
    "공고",
    "모집",
    "선발",
    "면접",
    "서류",
    "접수",
    "기간",
    "방법",
    "문의",
    "전화",
    "이메일",
    "홈페이지",
    "포털",
    "시스템",
    "점검",
    "서비스",
    "중단",
    "재개",
    "seminar",
    "report",
    "deadline",
    "meeting",
    "schedule",
    "project",
    "lab",
    "office",
];
const FAMILY: &[&str] = &["김", "이", "박", "최", "정", "강", "조", "윤", "장", "임"];
const GIVEN: &[&str] = &[
    "민준", "서연", "도윤", "지우", "하준", "서윤", "은우", "하은", "시우", "지민", "유준", "수아",
    "지호", "지아", "예준", "윤서", "주원", "채원", "건우", "다은",
];

/// A small deterministic generator (SplitMix64).
struct Mix(u64);

impl Mix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[(self.next() % from.len() as u64) as usize]
    }
}

/// The sender of message `n`: 200 people, "김민준" for n % 200 == 0.
fn sender(n: u64) -> (String, String) {
    let who = n % 200;
    let name = format!(
        "{}{}",
        FAMILY[(who % 10) as usize],
        GIVEN[((who / 10) % 20) as usize]
    );
    (name, format!("user{who}@campus.test"))
}

/// Words, mostly separated by spaces, sometimes written together.
fn words(mix: &mut Mix, count: usize) -> String {
    let mut out = String::new();
    for i in 0..count {
        if i > 0 && !mix.next().is_multiple_of(4) {
            out.push(' ');
        }
        out.push_str(mix.pick(WORDS));
        if mix.next().is_multiple_of(12) {
            out.push_str(".\n");
        }
    }
    out
}

/// Message `n` (RFC 5322, UTF-8, base64 subject, 8bit body of 40-100 words).
pub fn message(n: u64, to: &str) -> Vec<u8> {
    let mut mix = Mix(n.wrapping_mul(7919).wrapping_add(17));
    let (name, address) = sender(n);
    let subject_words = 2 + (mix.next() % 3) as usize;
    let mut subject = words(&mut mix, subject_words);
    if n.is_multiple_of(3) {
        subject = format!("[공지] {subject}");
    }
    let count = 40 + (mix.next() % 60) as usize;
    let mut body = words(&mut mix, count);
    if n % 10_000 == 7 {
        body.push_str("\n특별장학생선발 결과를 알려 드립니다.");
    }
    // Three years of mail, newest last.
    let date = 1_672_531_200 + (n as i64) * 900;
    let date = chrono::DateTime::from_timestamp(date, 0)
        .map(|d| d.to_rfc2822())
        .unwrap_or_default();
    let b64 = |s: &str| {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(s.as_bytes())
    };
    format!(
        "From: =?UTF-8?B?{}?= <{address}>\r\nTo: {to}\r\nSubject: =?UTF-8?B?{}?=\r\n\
         Date: {date}\r\nMessage-ID: <bench.{n}@campus.test>\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{}\r\n",
        b64(&name),
        b64(&subject),
        body.replace('\n', "\r\n")
    )
    .into_bytes()
}
