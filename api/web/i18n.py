"""Page strings in zh-CN and English, and the choice of language for a request.

Chinese is the default (the packs carry Chinese labels and most scanners are in China); English
is chosen by ``?lang=en`` or by an ``Accept-Language`` whose first acceptable language is
English. Strings are plain data so the pages, the read-aloud text and the tests share one source.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, Literal

__all__ = [
    "LANGS",
    "Lang",
    "html_lang",
    "negotiate",
    "role_name",
    "step_name",
    "t",
]

Lang = Literal["zh", "en"]
LANGS: Final[tuple[Lang, ...]] = ("zh", "en")

_HTML_LANG: Final[Mapping[Lang, str]] = {"zh": "zh-CN", "en": "en"}

# One table, keyed by message id. Placeholders use str.format names.
_STRINGS: Final[Mapping[str, Mapping[Lang, str]]] = {
    # ---- consumer page chrome
    "site": {"zh": "一码 · 药品追溯查询", "en": "Yima · medicine check"},
    "switch_lang": {"zh": "English", "en": "中文"},
    "read_aloud": {"zh": "朗读结果", "en": "Read aloud"},
    "check_another": {"zh": "查询其他药品", "en": "Check another pack"},
    "scan_title": {"zh": "输入药品追溯码", "en": "Enter the code on the pack"},
    "scan_help": {
        "zh": "请输入包装上二维码下方的追溯码（20 位数字），或扫码得到的网址。",
        "en": "Type the code printed under the barcode (20 digits) or the scanned web address.",
    },
    "scan_button": {"zh": "查询", "en": "Check"},
    "code_label": {"zh": "追溯码", "en": "Code"},
    # ---- verdicts (headline, then a sentence of advice)
    "v_genuine": {"zh": "正品", "en": "Genuine"},
    "v_genuine_detail": {
        "zh": "此药品已在追溯系统登记，流通记录完整。",
        "en": "This pack is registered and its journey is on record.",
    },
    "v_genuine_sold_detail": {
        "zh": "此药品已售出 1 次（{date}，{city}）。如果不是您购买的，请举报。",
        "en": "This pack was sold once ({date}, {city}). If it was not sold to you, report it.",
    },
    "v_unknown_code": {"zh": "查无此码", "en": "Unknown code"},
    "v_unknown_code_detail": {
        "zh": "此码未在追溯系统登记，可能是假药。请勿使用，并向药店或药监部门举报。",
        "en": "This code is not registered: the pack may be counterfeit. "
        "Do not use it; report it to the pharmacy or the regulator.",
    },
    "v_recalled": {"zh": "已召回", "en": "Recalled"},
    "v_recalled_detail": {
        "zh": "此批次已被召回。请勿使用，请退回药店。",
        "en": "This lot has been recalled. Do not use it; return it to the pharmacy.",
    },
    "v_expired": {"zh": "已过期", "en": "Expired"},
    "v_expired_detail": {
        "zh": "此药品已于 {expiry} 过期。请勿使用。",
        "en": "This pack expired on {expiry}. Do not use it.",
    },
    "v_already_dispensed": {"zh": "已售出 {n} 次", "en": "Already sold {n} times"},
    "v_already_dispensed_detail": {
        "zh": "此码已售出 {n} 次，首次于 {date}（{city}）。"
        "一盒药只应售出一次，可能是回流药或假药，请举报。",
        "en": "This code was sold {n} times, first on {date} ({city}). A pack is sold only once: "
        "it may be resold or fake. Please report it.",
    },
    "v_cold_chain": {"zh": "冷链异常", "en": "Cold-chain breach"},
    "v_cold_chain_detail": {
        "zh": "运输或储存温度超出规定范围，药品可能失效。请勿使用。",
        "en": "The pack was stored outside its temperature range and may not work. Do not use it.",
    },
    "v_suspected_clone": {"zh": "疑似仿冒码", "en": "Suspected copied code"},
    "v_suspected_clone_detail": {
        "zh": "此码在多个城市被查询，可能被复制。请向药店或药监部门举报。",
        "en": "This code was checked in several cities and may have been copied. "
        "Report it to the pharmacy or the regulator.",
    },
    "v_on_hold": {"zh": "暂停使用", "en": "On hold"},
    "v_on_hold_detail": {
        "zh": "此药品已被暂停流通，正在核查。请勿使用，请咨询药店。",
        "en": "This pack has been put on hold while it is checked. Do not use it; "
        "ask the pharmacy.",
    },
    "v_not_usable": {"zh": "请勿使用", "en": "Do not use"},
    "v_not_usable_detail": {
        "zh": "此码已注销或销毁。请勿使用，并向药店或药监部门举报。",
        "en": "This code was withdrawn or destroyed. Do not use the pack; report it.",
    },
    "v_logistic_unit": {"zh": "物流箱码", "en": "Shipping unit"},
    "v_logistic_unit_detail": {
        "zh": "这是物流箱（托盘）的编码，不是单盒药品。请扫描药盒上的码。",
        "en": "This is the code of a case or pallet, not of a pack. Scan the code on the pack.",
    },
    "unknown_city": {"zh": "地点不详", "en": "place unknown"},
    "unknown_date": {"zh": "日期不详", "en": "date unknown"},
    # ---- consumer page sections
    "product": {"zh": "药品信息", "en": "Product"},
    "generic_name": {"zh": "通用名", "en": "Generic name"},
    "trade_name": {"zh": "商品名", "en": "Trade name"},
    "strength": {"zh": "规格", "en": "Strength"},
    "package": {"zh": "包装规格", "en": "Pack size"},
    "dosage_form": {"zh": "剂型", "en": "Dosage form"},
    "approval_no": {"zh": "批准文号", "en": "Approval number"},
    "mah": {"zh": "上市许可持有人", "en": "Marketing authorisation holder"},
    "manufacturer": {"zh": "生产企业", "en": "Manufacturer"},
    "lot": {"zh": "批号", "en": "Lot"},
    "expiry": {"zh": "有效期至", "en": "Expiry"},
    "origin": {"zh": "产地", "en": "Origin of the herb"},
    "processing": {"zh": "炮制", "en": "Processing"},
    "herb": {"zh": "药材", "en": "Herb"},
    "harvest_date": {"zh": "采收日期", "en": "Harvested"},
    "herb_lot": {"zh": "药材批号", "en": "Herb lot"},
    "tcm": {"zh": "中药饮片信息", "en": "Decoction pieces"},
    "journey": {"zh": "流通记录", "en": "Journey"},
    "journey_empty": {"zh": "暂无流通记录。", "en": "No journey on record yet."},
    "proof": {"zh": "可验证证明", "en": "Proof"},
    "proof_line": {
        "zh": "已对照公开账本检查点 {size} 验证。",
        "en": "Verified against log checkpoint {size}.",
    },
    "proof_none": {
        "zh": "此码不在公开账本中。",
        "en": "This code is not in the public log.",
    },
    "witnesses": {"zh": "见证方联署：{n} 个", "en": "Witness cosignatures: {n}"},
    "witnesses_none": {"zh": "尚无见证方联署", "en": "No witness cosignature yet"},
    "anchor": {"zh": "区块链锚定：{status}", "en": "Chain anchor: {status}"},
    "anchor_none": {"zh": "尚未锚定", "en": "not anchored yet"},
    "anchor_at": {
        "zh": "账本前 {size} 条已锚定于{chain}（区块 {block}）",
        "en": "the first {size} entries are anchored on {chain} (block {block})",
    },
    "anchor_simulated": {"zh": "模拟链（仅演示，不作证明）", "en": "a simulated chain (demo only)"},
    "anchor_chain": {"zh": "链 {chain_id}", "en": "chain {chain_id}"},
    "bundle_note": {
        "zh": "完整证明文件（账本条目与包含证明）供此药品流通环节中的企业及药监部门登录后下载；"
        "公开检查点见 /v1/log/checkpoint。",
        "en": "The full proof bundle (log entries with inclusion proofs) can be downloaded by "
        "the companies in this pack's journey and by regulators once signed in; the public "
        "checkpoint is at /v1/log/checkpoint.",
    },
    "download_proof": {"zh": "下载证明文件", "en": "Download the proof bundle"},
    "privacy_note": {
        "zh": "为保护商业信息，此处只显示城市与环节，不显示企业名称、价格或单据。",
        "en": "Only cities and roles are shown: never company names, prices or documents.",
    },
    # ---- error pages
    "bad_code_title": {"zh": "无法识别此码", "en": "This code cannot be read"},
    "bad_code_detail": {
        "zh": "此码格式不正确，请核对后重新输入，或重新扫码。",
        "en": "The code is not well formed. Check it and type it again, or scan it again.",
    },
    "not_found_title": {"zh": "页面不存在", "en": "Page not found"},
    "rate_limited_title": {"zh": "查询过于频繁", "en": "Too many checks"},
    "rate_limited_detail": {
        "zh": "请稍候 {seconds} 秒再试。",
        "en": "Please wait {seconds} seconds and try again.",
    },
    "not_a_pack_title": {"zh": "这不是单盒药品的码", "en": "Not the code of a pack"},
    "not_a_pack_detail": {
        "zh": "此码只标识药品种类或批次。请扫描药盒上带序列号的追溯码。",
        "en": "This code names a product or a lot, not one pack. "
        "Scan the code with a serial number on the pack.",
    },
    # ---- journey roles and steps
    "role_manufacturer": {"zh": "生产企业", "en": "Manufacturer"},
    "role_distributor": {"zh": "经营企业", "en": "Distributor"},
    "role_logistics": {"zh": "物流企业", "en": "Logistics"},
    "role_pharmacy": {"zh": "药店", "en": "Pharmacy"},
    "role_hospital": {"zh": "医院", "en": "Hospital"},
    "role_vaccination_site": {"zh": "接种单位", "en": "Vaccination site"},
    "role_dispenser": {"zh": "药店 / 医院", "en": "Pharmacy / hospital"},
    "role_regulator": {"zh": "监管部门", "en": "Regulator"},
    "role_unknown": {"zh": "流通环节", "en": "Supply chain"},
    # Lifecycle step names (ledger.lifecycle.classify), as the public reads them.
    "step_commission": {"zh": "赋码出厂", "en": "Coded at the factory"},
    "step_pack": {"zh": "装箱", "en": "Packed"},
    "step_unpack": {"zh": "拆箱", "en": "Unpacked"},
    "step_ship": {"zh": "发货", "en": "Shipped"},
    "step_receive": {"zh": "收货", "en": "Received"},
    "step_dispense": {"zh": "售出", "en": "Sold"},
    "step_administer": {"zh": "接种", "en": "Administered"},
    "step_undo_dispense": {"zh": "撤销售出", "en": "Sale undone"},
    "step_recall": {"zh": "召回", "en": "Recalled"},
    "step_recall_lift": {"zh": "解除召回", "en": "Recall lifted"},
    "step_quarantine": {"zh": "暂停使用", "en": "Put on hold"},
    "step_release": {"zh": "恢复使用", "en": "Released"},
    "step_sensor": {"zh": "温度记录", "en": "Temperature logged"},
    "step_transform": {"zh": "炮制加工", "en": "Processed"},
    "step_destroy": {"zh": "销毁", "en": "Destroyed"},
    "step_decommission": {"zh": "注销", "en": "Withdrawn"},
    "step_retract": {"zh": "更正", "en": "Corrected"},
    "step_observe": {"zh": "查验", "en": "Checked"},
    "step_other": {"zh": "记录", "en": "Recorded"},
    # ---- dashboard
    "dash_title": {"zh": "一码 · 监管与企业看板", "en": "Yima · regulator and company dashboard"},
    "login": {"zh": "登录", "en": "Sign in"},
    "logout": {"zh": "退出", "en": "Sign out"},
    "token": {"zh": "访问令牌", "en": "API token"},
    "token_help": {
        "zh": "请粘贴管理员发放的访问令牌（以 yima_ 开头）。",
        "en": "Paste the API token you were given (it starts with yima_).",
    },
    "login_failed": {"zh": "令牌无效或已撤销。", "en": "The token is unknown or revoked."},
    "csrf_failed": {
        "zh": "表单已过期，请刷新页面后重试。",
        "en": "The form has expired; reload the page and try again.",
    },
    "overview": {"zh": "总览", "en": "Overview"},
    "alerts": {"zh": "预警", "en": "Alerts"},
    "recall": {"zh": "召回", "en": "Recall"},
    "lots": {"zh": "批次", "en": "Lots"},
    "log_status": {"zh": "账本状态", "en": "Log status"},
    "org_page": {"zh": "企业页面", "en": "Organisation"},
    "network": {"zh": "供应网络", "en": "Supply network"},
    "timeline": {"zh": "流通时间线", "en": "Journey timeline"},
    "filter": {"zh": "筛选", "en": "Filter"},
    "kind": {"zh": "类型", "en": "Kind"},
    "province": {"zh": "省份", "en": "Province"},
    "date_from": {"zh": "起始日期", "en": "From"},
    "date_to": {"zh": "截止日期", "en": "To"},
    "any": {"zh": "全部", "en": "Any"},
    "evidence": {"zh": "证据", "en": "Evidence"},
    "log_index": {"zh": "账本序号", "en": "Log index"},
    "event_id": {"zh": "事件 ID", "en": "Event ID"},
    "inclusion_proof": {"zh": "包含证明", "en": "Inclusion proof"},
    "no_alerts": {"zh": "没有符合条件的预警。", "en": "No alerts match."},
    "log_size": {"zh": "账本条目数", "en": "Log size"},
    "latest_checkpoint": {"zh": "最新检查点", "en": "Latest checkpoint"},
    "status": {"zh": "状态", "en": "Status"},
    "location": {"zh": "位置", "en": "Location"},
    "custodian": {"zh": "持有方", "en": "Custodian"},
    "packs": {"zh": "件", "en": "packs"},
    "stock": {"zh": "库存（按地点）", "en": "Stock by location"},
    "code": {"zh": "编码", "en": "Code"},
    "gtin": {"zh": "GTIN", "en": "GTIN"},
    "reason": {"zh": "召回原因", "en": "Reason"},
    "recall_intro": {
        "zh": "召回必须由召回方用自己的密钥签名：服务器从不代任何一方签名。"
        "请在您的终端运行下面的命令，然后把生成的签名文件内容粘贴到下方提交。",
        "en": "A recall must be signed with the recalling party's own key: the server never "
        "signs for anyone. Run the command below on your terminal, then paste the signed "
        "capture it writes into the box and submit it.",
    },
    "recall_command": {"zh": "签名命令", "en": "Command to sign the recall"},
    "recall_prepare": {"zh": "生成命令", "en": "Show the command"},
    "signed_capture": {"zh": "已签名的召回文件（JSON）", "en": "Signed recall capture (JSON)"},
    "submit_recall": {"zh": "提交召回", "en": "Submit the recall"},
    "recall_done": {
        "zh": "召回已记入账本：影响 {n} 件，检查点 {size}。",
        "en": "Recall logged: {n} packs affected, checkpoint {size}.",
    },
    "recall_failed": {"zh": "召回未被接受：{reason}", "en": "The recall was refused: {reason}"},
    "lot_view": {"zh": "批次详情", "en": "Lot"},
    "open": {"zh": "查看", "en": "Open"},
    "item_view": {"zh": "单品追溯", "en": "Pack journey"},
    "forbidden": {"zh": "您无权查看此页面。", "en": "You may not see this page."},
    "count": {"zh": "数量", "en": "Count"},
    "message": {"zh": "说明", "en": "Message"},
    "org": {"zh": "企业", "en": "Organisation"},
    "time": {"zh": "时间", "en": "Time"},
    "product_name": {"zh": "产品", "en": "Product"},
    "none": {"zh": "无", "en": "none"},
    "witness_count": {"zh": "见证联署数", "en": "Witness cosignatures"},
    "recalled_flag": {"zh": "已召回", "en": "recalled"},
    "quarantined_flag": {"zh": "已暂停", "en": "quarantined"},
}


def t(lang: Lang, key: str, /, **values: object) -> str:
    """Return the message ``key`` in ``lang`` with ``values`` filled in.

    Args:
        lang: ``"zh"`` or ``"en"``.
        key: A message id of the table above.
        **values: Placeholder values.

    Returns:
        The text; an unknown key returns the key itself so a missing string shows up in review
        instead of breaking the page.
    """
    entry = _STRINGS.get(key)
    if entry is None:
        return key
    text = entry[lang]
    return text.format(**values) if values else text


def role_name(lang: Lang, role: str | None) -> str:
    """The public name of a supply-chain role (never an organisation's name)."""
    return (
        t(lang, f"role_{role}") if role and f"role_{role}" in _STRINGS else t(lang, "role_unknown")
    )


def step_name(lang: Lang, step: str | None) -> str:
    """The public name of a lifecycle step (``commission``, ``ship``, ``dispense``...)."""
    key = f"step_{step}"
    return t(lang, key) if key in _STRINGS else t(lang, "step_other")


def html_lang(lang: Lang) -> str:
    """The BCP 47 tag for ``<html lang>`` and for speech synthesis."""
    return _HTML_LANG[lang]


def negotiate(query_lang: str | None, accept_language: str | None) -> Lang:
    """Choose the page language: ``?lang=`` first, then ``Accept-Language``, else zh.

    Args:
        query_lang: The ``lang`` query parameter, if any (``en``, ``zh``, ``zh-CN``...).
        accept_language: The raw ``Accept-Language`` header, if any.

    Returns:
        ``"en"`` or ``"zh"``.
    """
    picked = _primary(query_lang)
    if picked is not None:
        return picked
    if not accept_language:
        return "zh"
    # Highest q wins; ties keep header order (RFC 9110 §12.5.4). Unsupported tags are skipped so
    # "fr, en;q=0.5" still gives English.
    ranked: list[tuple[float, int, Lang]] = []
    for pos, part in enumerate(accept_language.split(",")):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        lang = _primary(tag)
        if lang is not None and q > 0:
            ranked.append((-q, pos, lang))
    return min(ranked)[2] if ranked else "zh"


def _primary(tag: str | None) -> Lang | None:
    if not tag:
        return None
    primary = tag.strip().lower().split("-", 1)[0]
    if primary == "en":
        return "en"
    if primary == "zh":
        return "zh"
    return None
