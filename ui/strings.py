"""Every UI label in one table, English and Chinese; Gradio picks by the browser's language. Tasks, export formats
and training settings bring their own titles (in their modules and declarations), so adding one needs no line here."""
import gradio as gr

from core.deploy.export import EXPORTERS
from core.runs.config import SETTINGS
from core.tasks import TASKS


def format_key(name: str) -> str:
    """The string key of an export format's title, e.g. format_onnx_int8."""
    return "format_" + name.replace("-", "_")


STRINGS = {
    "title": ("## SFT Studio — fine-tune a pretrained model on your own texts, images or sound clips, in the browser",
              "## SFT Studio — 在浏览器中用你自己的文本、图片或音频微调预训练模型"),
    "tab_data": ("1 · Data", "1 · 数据"),
    "tab_train": ("2 · Train", "2 · 训练"),
    "tab_evaluate": ("3 · Evaluate", "3 · 评估"),
    "tab_predict": ("4 · Predict", "4 · 预测"),
    "tab_runs": ("Runs", "历史运行"),
    "tab_chat": ("Chat", "对话"),
    "tab_monitor": ("Monitor", "监控"),
    "monitor_run": ("Served run (its request log)", "已部署的运行（其请求日志）"),
    "monitor_db": ("... or a request-log database", "……或请求日志数据库"),
    "monitor_window": ("Last N predictions", "最近 N 次预测"),
    "monitor_traffic": ("Traffic and latency", "流量与延迟"),
    "monitor_mix": ("Predictions now vs on the validation rows", "当前预测与验证集预测的分布"),
    "monitor_make_table": ("Make a training table (run's rows + feedback)", "生成训练表（原始数据 + 反馈）"),
    "monitor_table_file": ("Training table", "训练表"),
    "review_title": ("Review: check the predictions most worth a look (keys: 1-9 label, Enter save, S skip)",
                     "审核：检查最值得一看的预测（按键：1-9 选标签，Enter 保存，S 跳过）"),
    "review_load": ("Load the review queue", "加载审核队列"),
    "review_label": ("True label", "真实标签"),
    "review_save": ("Save (Enter)", "保存（Enter）"),
    "review_skip": ("Skip (S)", "跳过（S）"),
    "review_make_table": ("Make a training table from reviewed rows", "用已审核的行生成训练表"),
    "review_table_files": ("Training table and held-out reviewed rows", "训练表与留出的已审核行"),
    "check_quality": ("Check data quality", "检查数据质量"),
    "resume": ("Resume (interrupted run)", "继续训练（中断的运行）"),
    "export_check_format": ("Export to evaluate", "要评估的导出格式"),
    "export_check": ("Evaluate the export on the validation rows", "在验证集上评估导出模型"),
    "compare_title": ("Compare runs", "比较运行"),
    "compare_runs": ("Runs to compare (two or more)", "要比较的运行（两个或更多）"),
    "differences_only": ("Settings: differences only", "设置：只显示不同项"),
    "compare_button": ("Compare", "比较"),
    "compare_curves": ("Curves", "曲线"),
    "compare_metric": ("Primary metric (bar), trivial and classical baselines (lines)", "主要指标（柱）、平凡基线与经典基线（线）"),
    "compare_per_class": ("Per-class F1", "各类别 F1"),
    "compare_settings": ("Settings", "设置"),
    "roc": ("ROC curves (one class vs the rest)", "ROC 曲线（一对其余）"),
    "pr": ("Precision-recall curves", "精确率-召回率曲线"),
    "reliability": ("Reliability diagram (calibration)", "可靠性图（校准）"),
    "threshold": ("Decision threshold", "决策阈值"),
    "threshold_info": ("Two-class runs: predict the second class from this probability", "二分类：第二类的概率达到该值即预测为第二类"),
    "save_threshold": ("Save threshold with the run", "保存阈值到该运行"),
    "label_issues": ("Suspected label errors (confident learning on validation rows)", "疑似标注错误（基于验证集的置信学习）"),
    "chat_run": ("Fine-tuned assistant", "微调后的助手"),
    "chat_tuned": ("Fine-tuned model", "微调后的模型"),
    "chat_base": ("Base model (same prompt)", "基础模型（相同提示）"),
    "chat_in": ("Message", "消息"),
    "examples": ("Examples from this run's validation rows", "本次运行验证集中的示例"),
    "better_answer": ("A better answer to your last message", "对上一条消息更好的回答"),
    "better_answer_info": ("Kept as preferred over the fine-tuned model's answer; thumbs up/down on one of the two "
                           "answers keeps it preferred over (or below) the other", "将优先于微调模型的回答；对两个回答之一点赞/点踩也会记录偏好"),
    "save_better": ("Save the better answer", "保存更好的回答"),
    "train_feedback": ("Train on my feedback", "用我的反馈训练"),
    "send": ("Send", "发送"),
    "clear": ("Clear", "清空"),
    "temperature": ("Temperature", "温度"),
    "max_new_tokens": ("Max new tokens", "最大生成词元数"),
    "compare": ("Also ask the base model", "同时询问基础模型"),
    "upload": ("Upload a table (CSV, TSV, JSONL, Excel, CoNLL) or a zip of images or sound clips (one folder per class)",
               "上传表格（CSV、TSV、JSONL、Excel、CoNLL）或图片、音频压缩包（每类一个文件夹）"),
    "sample": ("Sample dataset", "示例数据集"),
    "use_sample": ("Use sample data", "使用示例数据"),
    "text_col": ("Text column", "文本列"),
    "label_col": ("Label column", "标签列"),
    "preview": ("First rows", "前几行"),
    "image_in": ("Image", "图片"),
    "mistake_images": ("Most confident mistakes: true → predicted (confidence)", "最有把握的错误：真实 → 预测（置信度）"),
    "image_grid": ("Images of each class (count)", "各类别的图片（数量）"),
    "explanation": ("Which words moved it (integrated gradients: red towards the class, blue away)",
                    "哪些词影响了预测（积分梯度：红色支持该类，蓝色反对）"),
    "saliency": ("Which parts decided it (occlusion: red where a grey patch lowers the class's probability most)",
                 "哪些部分决定了预测（遮挡法：红色处被灰块遮住时该类别概率下降最多）"),
    "slice_by": ("Slice the validation rows by", "按此切分验证集"),
    "slices": ("The metric per slice, worst first (counts; 95% interval)", "各切片的指标，最差在前（行数；95% 区间）"),
    "more_labels": ("How many more labels? Train again on 25/50/75% of the rows", "还需要多少标注？用 25/50/75% 的行再训练"),
    "learning_curve": ("Learning curve", "学习曲线"),
    "audio_in": ("Sound clip: record or upload", "音频：录音或上传"),
    "clip_players": ("Clips of each class (count)", "各类别的音频（数量）"),
    "clip_lengths": ("Clip durations", "音频时长"),
    "mistake_clips": ("Most confident mistakes: true → predicted (confidence)", "最有把握的错误：真实 → 预测（置信度）"),
    "balance": ("Rows per class, label, entity type or score range", "各类别、标签、实体类型或分数区间的行数"),
    "local_path": ("Local model folder (Hugging Face format)", "本地模型文件夹（Hugging Face 格式）"),
    "preset": ("Preset", "预设"),
    "advanced": ("Advanced", "高级"),
    "first_steps": ("**No runs yet: three steps to your first model**\n\n1. **Data**: upload a table with a text and a "
                    "label column, or keep the sample.\n2. **Train**: press *Start training*; the time it will take is "
                    "shown beside the button.\n3. **Predict**: type a text and press Enter (Evaluate shows where the "
                    "model errs; Runs keeps every run).",
                    "**还没有运行：三步得到第一个模型**\n\n1. **数据**：上传包含文本列和标签列的表格，或使用示例数据。\n"
                    "2. **训练**：点击“开始训练”；按钮旁会显示预计用时。\n3. **预测**：输入文本并按回车（评估页显示模型错在哪里；"
                    "历史运行页保存每次运行）。"),
    "preset_info": ("Fast: one pass to try things out · Balanced: enough steps for your table (below) · "
                    "Accurate: twice the steps, longer texts", "Fast：训练一轮试试 · Balanced：按数据量安排足够的步数（见下方） · "
                    "Accurate：步数加倍、文本更长"),
    "advanced_info": ("Every setting has a sensible default for your table; open this to change one",
                      "每个设置都有适合你的数据的默认值；需要修改时再展开"),
    "search": ("Search settings (Optuna): let trials find the settings", "搜索超参数（Optuna）：让多次试验找出最佳设置"),
    "search_params": ("Settings to search", "要搜索的设置"),
    "search_ranges": ("Ranges", "搜索范围"),
    "search_ranges_info": ("name=low:high (choices: name=a|b|c), separated by ;", "名称=下限:上限（选项：名称=a|b|c），用 ; 分隔"),
    "search_trials": ("Trials", "试验次数"),
    "search_budget": ("Time budget (minutes)", "时间预算（分钟）"),
    "search_budget_info": ("0: no limit; no new trial starts after it", "0：不限；超时后不再开始新的试验"),
    "search_pruner": ("Stop hopeless trials early", "提前停止没有希望的试验"),
    "search_start": ("Search settings", "开始搜索"),
    "search_stop": ("Stop the search", "停止搜索"),
    "search_use_best": ("Use the best", "使用最佳设置"),
    "search_table": ("Trials", "试验"),
    "search_best_curve": ("Best so far", "目前最佳"),
    "search_importance": ("Which settings matter", "各设置的重要性"),
    "search_parallel": ("Settings vs result", "设置与结果"),
    "search_slice": ("Each setting vs result", "每个设置与结果"),
    "run_as_base": ("your chat run", "你的对话运行"),
    "train_on_run": ("train on from run", "在此运行上继续训练"),
    "start": ("Start training", "开始训练"),
    "stop": ("Stop", "停止"),
    "curve": ("Loss and the task's main metric", "损失与任务主要指标"),
    "run": ("Run", "运行"),
    "refresh": ("Refresh", "刷新"),
    "per_class": ("Per class / label / entity type", "各类别 / 标签 / 实体类型指标"),
    "eval_chart": ("Confusion matrix, predicted vs true, or F1 per label", "混淆矩阵、预测值对真实值或各标签 F1"),
    "misclassified": ("Validation rows the model got most wrong", "验证集中错得最多的样本"),
    "text_in": ("Text", "文本"),
    "text_b_in": ("Second text (sentence pairs)", "第二个文本（句子对）"),
    "entities": ("Entities", "实体"),
    "predict": ("Predict", "预测"),
    "prediction": ("Prediction", "预测结果"),
    "batch_in": ("Batch prediction: upload a table", "批量预测：上传表格"),
    "batch_out": ("Download predictions", "下载预测结果"),
    "runs_table": ("Past runs", "历史运行"),
    "load_run": ("Use in Predict / Evaluate", "用于预测 / 评估"),
    "download_zip": ("Download as zip", "下载 zip"),
    "download_format": ("Format", "格式"),
    "format_run": ("run folder (resumable)", "运行文件夹（可续训）"),
    "confirm_delete": ("Yes, delete this run", "确认删除此运行"),
    "delete": ("Delete", "删除"),
    "share": ("Share / unshare", "共享 / 取消共享"),
    "lora_section": ("LoRA (train small adapters instead of every weight)", "LoRA（只训练小型适配器）"),
}

STRINGS |= {f"task_{name}": (task.view.title, task.view.title_zh) for name, task in TASKS.items()}
STRINGS |= {format_key(name): exporter.titles for name, exporter in EXPORTERS.items()}
SETTING_STRINGS = {  # a setting's label under its name, its help under name_info, a choice's title under name=choice
    key: text for name, declared in SETTINGS.items() for key, text in (
        (name, declared.label), (f"{name}_info", declared.info),
        *((f"{name}={choice}", title) for choice, title in zip(declared.choices, declared.choice_labels)))}
ALL_STRINGS = STRINGS | SETTING_STRINGS
I18N = gr.I18n(en={k: v[0] for k, v in ALL_STRINGS.items()}, zh={k: v[1] for k, v in ALL_STRINGS.items()})
t = I18N
