"""Chatting in the terminal with our agents: a short banner, truncation notices, a repetition
guard, and Ctrl-C that ends the chat like ``[EXIT]``.

::

    parlai interactive -mf zoo:empathy/moel_ed/model        # -v prints every option too

ParlAI 1.7.2's ``parlai interactive`` prints every option of the model (about 180 lines)
before the prompt, cuts long messages to ``--text-truncate`` tokens without a word, decodes
exactly as evaluation does (a long message can drive a beam into ``. . . .`` up to the length
cap) and shows a ``KeyboardInterrupt`` traceback on Ctrl-C. For an agent with
:class:`ChatMixin` the chat loop of this module, which :mod:`parlai_empathy.compat` installs
as ``parlai.scripts.interactive.interactive``:

* prints the agent's banner (model, history, ``[DONE]``/``[EXIT]``, decoding) instead of the
  options; ``--verbose`` (ParlAI's ``-v``) prints the options as before;
* calls :meth:`ChatMixin.start_chat`, which turns on the notices below and, unless the user
  chose ``--beam-block-ngram``, blocks repeated n-grams (``--chat-beam-block-ngram``,
  default 3) -- in this chat only: evaluation, training, ``empathy_report``, human-evaluation
  sampling and library use of ``interactive_mode`` keep the model's own decoding, the papers';
* ends the chat on Ctrl-C the way ``[EXIT]`` and Ctrl-D do (world log written, no traceback).

Every other agent gets ParlAI's own loop unchanged (the same statements, in the same order).
"""
from typing import List, Optional

# (ParlAI is imported inside the functions: parlai_empathy.compat imports this module while
# ``import parlai`` is still running)

# n-gram blocking for terminal chat when the model itself decodes without it
CHAT_BEAM_BLOCK_NGRAM = 3


class _ChatState:
    """What a chat remembers between messages (reset with the conversation)."""

    def __init__(self):
        self.history_noted = False


class ChatMixin:
    """Terminal-chat behaviour for a ``TorchGeneratorAgent``; put it first among the bases::

        class TinyGeneratorAgent(ChatMixin, GenerationMetricsMixin, TransformerGeneratorAgent):
            ...

    Nothing changes until the chat loop calls :meth:`start_chat`, so training, evaluation and
    programs that build the agent with ``interactive_mode`` decode exactly as before.

    Hooks an agent may override:

    * :meth:`chat_banner_lines`: the banner's lines (extend ``super()``'s, e.g. to say what an
      extra reply field means);
    * :meth:`chat_notice`: how a notice reaches the user (default: printed, highlighted).

    Option: ``--chat-beam-block-ngram N`` (default 3; -1 off), used only by the chat and only
    when the model decodes without n-gram blocking and ``--beam-block-ngram`` was not given.
    """

    _chat: Optional[_ChatState] = None

    @classmethod
    def add_cmdline_args(cls, parser, partial_opt=None):
        super().add_cmdline_args(parser, partial_opt=partial_opt)
        group = parser.add_argument_group("Terminal chat (parlai interactive)")
        group.add_argument(
            "--chat-beam-block-ngram",
            type=int,
            default=CHAT_BEAM_BLOCK_NGRAM,
            help="in `parlai interactive` only: never repeat an n-gram of this size within a "
            "reply (-1: off), unless --beam-block-ngram is given or the model sets it; "
            "evaluation always decodes as the model says",
        )
        return parser

    # --- the chat loop's entry point -----------------------------------------------------------

    def start_chat(self) -> str:
        """Switch this agent to terminal chat; return the banner. Called once, by the loop."""
        self._chat = _ChatState()
        self._chat_repetition_guard()
        return "\n".join(self.chat_banner_lines())

    def _chat_repetition_guard(self):
        ngram = self.opt.get("chat_beam_block_ngram", CHAT_BEAM_BLOCK_NGRAM)
        chosen = "beam_block_ngram" in (self.opt.get("override") or {})
        if ngram is not None and ngram > 0 and not chosen and self.beam_block_ngram <= 0:
            self.beam_block_ngram = ngram
            self.opt["beam_block_ngram"] = ngram

    # --- hooks ---------------------------------------------------------------------------------

    def chat_banner_lines(self) -> List[str]:
        """The banner printed before the first prompt (instead of ParlAI's option dump)."""
        model_file = self.opt.get("model_file") or "(no model file)"
        return [
            f"Chatting with {self.opt.get('model')} ({model_file}).",
            "Each reply reads the whole conversation so far "
            f"(its last {self._chat_context_tokens()} tokens).",
            "[DONE] starts a new conversation; [EXIT], Ctrl-D or Ctrl-C ends the chat.",
            f"Replies: {self._chat_decoding()}. -v shows every option.",
        ]

    def chat_notice(self, text: str):
        """Tell the user ``text`` (printed before the reply it concerns)."""
        from parlai.utils.strings import colorize

        print(colorize(f"[note] {text}", "highlight"), flush=True)

    # --- behaviour -----------------------------------------------------------------------------

    def reset(self):
        super().reset()
        if self._chat is not None:
            self._chat.history_noted = False

    def _set_text_vec(self, obs, history, truncate):
        obs = super()._set_text_vec(obs, history, truncate)
        if self._chat is not None and obs.get("context_truncated_length"):
            notice = self._chat_truncation_notice(obs, history, truncate)
            if notice:
                self.chat_notice(notice)
        return obs

    def _chat_truncation_notice(self, obs, history, truncate) -> Optional[str]:
        kept = len(obs["text_vec"])
        vecs = getattr(history, "history_vecs", None) or []
        message = len(vecs[-1]) if vecs else 0
        if message > kept:
            return (
                f"Your message is {message} tokens long; this model reads at most {kept} "
                f"(--text-truncate {truncate}), so it saw only the last {kept} of them."
            )
        if not self._chat.history_noted:
            self._chat.history_noted = True
            return (
                f"The conversation is now longer than the {kept} tokens this model reads: "
                "it no longer sees the earliest messages. [DONE] starts a new conversation."
            )
        return None

    def _chat_decoding(self) -> str:
        inference = self.opt.get("inference", "greedy")
        beam = getattr(self, "beam_size", self.opt.get("beam_size", 1))
        if inference == "beam" and beam > 1:
            text = f"beam search (beam {beam})"
        elif inference in ("greedy", "beam"):
            text = "greedy search"
        elif inference == "topk":
            text = f"top-{self.opt.get('topk')} sampling"
        elif inference == "nucleus":
            text = f"nucleus sampling (p={self.opt.get('topp')})"
        else:
            text = f"{inference} search"
        text += f", up to {getattr(self, 'label_truncate', None) or 256} tokens"
        block = getattr(self, "beam_block_ngram", -1)
        if block and block > 0:
            text += f", no repeated {block}-grams"
        return text

    def _chat_context_tokens(self):
        return getattr(self, "text_truncate", None) or self.opt.get("text_truncate") or "all"


def _is_chat_agent(agent) -> bool:
    return callable(getattr(agent, "start_chat", None))


def interactive(opt):
    """``parlai interactive``'s loop (ParlAI 1.7.2, ``parlai/scripts/interactive.py``), with
    the chat behaviour of this module for agents that have ``start_chat``."""
    from parlai.agents.local_human.local_human import LocalHumanAgent
    from parlai.core.agents import create_agent
    from parlai.core.params import ParlaiParser
    from parlai.core.worlds import create_task
    from parlai.utils import logging
    from parlai.utils.world_logging import WorldLogger

    if isinstance(opt, ParlaiParser):
        logging.error('interactive should be passed opt not Parser')
        opt = opt.parse_args()

    # Create model and assign it to the specified task
    agent = create_agent(opt, requireModelExists=True)
    chat = _is_chat_agent(agent)
    if chat:
        if opt.get("verbose"):
            agent.opt.log()
        print(agent.start_chat(), flush=True)
    else:
        agent.opt.log()
    human_agent = LocalHumanAgent(opt)
    # set up world logger
    world_logger = WorldLogger(opt) if opt.get('outfile') else None
    world = create_task(opt, [human_agent, agent])

    try:
        while not world.epoch_done():
            world.parley()
            if world.epoch_done() or world.get_total_parleys() <= 0:
                # chat was reset with [DONE], [EXIT] or EOF
                if world_logger is not None:
                    world_logger.reset()
                continue

            if world_logger is not None:
                world_logger.log(world)
            if opt.get('display_examples'):
                print("---")
                print(world.display())
    except KeyboardInterrupt:
        if not chat:
            raise
        # Ctrl-C: leave as [EXIT] does (the line after the prompt, then ParlAI's goodbye)
        print(flush=True)
        human_agent.finished = True
        if world_logger is not None:
            world_logger.reset()
        world.reset()
        finalize = getattr(world, "finalize_episode", None)
        if callable(finalize):
            finalize()

    if world_logger is not None:
        # dump world acts to file
        world_logger.write(opt['outfile'], world, file_format=opt['save_format'])
