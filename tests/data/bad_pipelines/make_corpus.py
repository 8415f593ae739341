#!/usr/bin/env python3
"""Writes the malformed pipelines of this folder (see README.md). Run from anywhere:
    /usr/bin/python3 tests/data/bad_pipelines/make_corpus.py
Each entry: body, the fragment the error must contain, the body's (line, column) the error must name (None when
the message has no position), and the command ("validate" unless the error shows only when the run starts).
The header lines are counted into the written position."""
import os

HERE = os.path.dirname(os.path.abspath(__file__))
D = '[data]\nuse = "synthetic"\ntrain_samples = 64\ntest_samples = 32\n'  # lines 1-4
M = '[model]\nuse = "small_cnn"\nwidth = 4\n'                            # 3 lines
O = '[optimizer]\nuse = "sgd"\nlr = 0.05\n'                              # 3 lines
S = '[[stage]]\nuse = "train"\nepochs = 1\n'                             # 3 lines
Q = '[quantizer]\nuse = "liq"\n'                                         # 2 lines
SYNTAX = 'TOML syntax error: '

CORPUS = {
    # TOML syntax: every message names line and column
    'unterminated_string': ('[run]\nname = "bad\n' + D + M + O + S,
                            'the string has no closing quote on this line', (2, 12)),
    'missing_value': (D + M + '[optimizer]\nuse = "sgd"\nlr =\n' + S, SYNTAX + 'Error while parsing key-value pair: expected value', (10, 5)),
    'unclosed_table_header': (D + '[model\nuse = "small_cnn"\n' + O + S, SYNTAX + "Error while parsing table header: expected ']'", (5, 7)),
    'unclosed_inline_table': (D + M + '[optimizer]\nuse = "sam"\nbase = { use = "sgd", lr = 0.1\n' + S,
                              'an inline table { ... } must close on the line it opens', (10, 31)),
    'duplicate_key': (D + M + '[optimizer]\nuse = "sgd"\nlr = 0.05\nlr = 0.1\n' + S, "cannot redefine existing floating-point 'lr'", (11, 6)),
    'duplicate_table': (D + M + O + '[model]\nuse = "small_resnet"\n' + S, "cannot redefine existing table 'model'", (11, 1)),
    'bare_word_value': (D + M + '[optimizer]\nuse = sgd\n' + S, 'a string needs quotes', (9, 7)),
    'invalid_escape': ('[run]\nname = "a\\qb"\n' + D + M + O + S, "unknown escape sequence '\\q'", (2, 11)),
    'non_utf8_bytes': ('[run]\nname = "caf\xe9"\n' + D + M + O + S, SYNTAX + 'Encountered invalid utf-8 sequence', (2, 11)),
    'nul_byte': ('[run]\nname = "a\0b"\n' + D + M + O + S, 'unescaped control characters', (2, 10)),
    'huge_integer': ('[run]\nseed = 123456789012345678901234567890\n' + D + M + O + S, 'is not representable in 64 bits', (2, 38)),
    'deeply_nested_arrays': ('[run]\nseed = ' + '[' * 5000 + ']' * 5000 + '\n' + D + M + O + S,
                             'exceeded maximum nested value depth', (2, 264)),
    'empty_file': ('', 'empty pipeline: it needs at least [data], [model] and one [[stage]]', None),
    # types
    'lr_is_string': (D + M + '[optimizer]\nuse = "sgd"\nlr = "fast"\n' + S, 'optimizer.lr: expected a number, got string', (10, 6)),
    'epochs_is_float': (D + M + O + '[[stage]]\nuse = "train"\nepochs = 1.5\n', 'stage[0].epochs: expected an integer, got float', (13, 10)),
    'section_is_a_value': ('model = "small_cnn"\n' + D + O + S, 'model: expected a table, got string', (1, 9)),
    'use_is_not_a_string': (D + '[model]\nuse = 3\n' + O + S, 'model.use: expected a string, got integer', (6, 7)),
    'milestones_of_strings': (D + M + O + S + 'schedule = "multistep"\nmilestones = [1, "two"]\n',
                              'stage[0].milestones: expected an array of integers, got string', (15, 18)),
    'stage_is_a_single_table': (D + M + O + '[stage]\nuse = "train"\n', 'stage: expected [[stage]] tables', (11, 1)),
    # numbers out of range
    'rho_negative': (D + M + '[optimizer]\nuse = "sam"\nrho = -0.1\n' + S, 'optimizer.rho: must be in [0, inf), got -0.1', (10, 7)),
    'esam_beta_zero': (D + M + '[optimizer]\nuse = "esam"\nbeta = 0\n' + S, 'optimizer.beta: must be in (0, 1], got 0', (10, 8)),
    'esam_gamma_above_one': (D + M + '[optimizer]\nuse = "esam"\ngamma = 1.5\n' + S, 'optimizer.gamma: must be in (0, 1], got 1.5', (10, 9)),
    'lr_zero': (D + M + '[optimizer]\nuse = "sgd"\nlr = 0\n' + S, 'optimizer.lr: must be in (0, inf), got 0', (10, 6)),
    'lr_infinite': (D + M + '[optimizer]\nuse = "sgd"\nlr = inf\n' + S, 'optimizer.lr: must be a finite number, got inf', (10, 6)),
    'group_lr_negative': (D + M + O + S + '[[stage.group]]\nmatch = "*.bias"\nlr = -1\n', 'stage[0].group[0].lr: must be in (0, inf), got -1', (16, 6)),
    'weight_bits_1': (D + M + '[quantizer]\nuse = "liq"\nweight_bits = 1\n' + O + S,
                      'quantizer.weight_bits: must be 2..8, or 32 for full precision, got 1', (10, 15)),
    'activation_bits_9': (D + M + '[quantizer]\nuse = "liq"\nactivation_bits = 9\n' + O + S,
                          'quantizer.activation_bits: must be 2..8, or 32 for full precision, got 9', (10, 19)),
    'first_weight_bits_33': (D + M + '[quantizer]\nuse = "liq"\nfirst_weight_bits = 33\n' + O + S,
                             'quantizer.first_weight_bits: must be 2..8, or 32 for full precision, got 33', (10, 21)),
    'rule_bits_9': (D + M + Q + '[[quantizer.rule]]\nmatch = "conv2"\nweight_bits = 9\n' + O + S,
                    'quantizer.rule[0].weight_bits: must be 2..8, or 32 for full precision, got 9', (12, 15)),
    'epochs_negative': (D + M + O + '[[stage]]\nuse = "train"\nepochs = -3\n', 'stage[0].epochs: must be in [1, inf), got -3', (13, 10)),
    'threads_huge': ('[run]\nthreads = 99999999999\n' + D + M + O + S, 'run.threads: must be in [0, 4096], got 99999999999', (2, 11)),
    # unknown names: did-you-mean and the list of what exists
    'unknown_top_level_section': (D + M + '[optimiser]\nuse = "sgd"\n' + O + S, "optimiser: unknown section; did you mean 'optimizer'?", (8, 1)),
    'unknown_key_in_run': ('[run]\nnmae = "x"\n' + D + M + O + S, "run.nmae: unknown key for [run]; did you mean 'name'?", (2, 1)),
    'unknown_key_in_stage': (D + M + O + '[[stage]]\nuse = "train"\nepoch = 3\n',
                             "stage[0].epoch: unknown key for stage 'train'; did you mean 'epochs'?", (13, 1)),
    'unknown_key_in_inline_base': (D + M + '[optimizer]\nuse = "sam"\nbase = { use = "sgd", lrr = 0.1 }\n' + S,
                                   "optimizer.base.lrr: unknown key for optimizer 'sgd'; did you mean 'lr'?", (10, 23)),
    'eval_stage_with_epochs': (D + M + O + S + '[[stage]]\nuse = "eval"\nepochs = 1\n',
                               "stage[1].epochs: unknown key for stage 'eval' (accepted: split, ", (16, 1)),
    'unknown_dataset': ('[data]\nuse = "fashion_mnits"\n' + M + O + S, "data.use: unknown dataset 'fashion_mnits'; did you mean 'fashion_mnist'?", (2, 7)),
    'unknown_model': (D + '[model]\nuse = "resnet_18"\n' + O + S, "model.use: unknown model 'resnet_18'; did you mean 'resnet18'?", (6, 7)),
    'unknown_quantizer': (D + M + '[quantizer]\nuse = "lsqq"\n' + O + S, "quantizer.use: unknown quantizer 'lsqq'; did you mean 'lsq'?", (9, 7)),
    'unknown_optimizer': (D + M + '[optimizer]\nuse = "sgdd"\n' + S, "optimizer.use: unknown optimizer 'sgdd'; did you mean 'sgd'?", (9, 7)),
    'unknown_base_optimizer': (D + M + '[optimizer]\nuse = "sam"\nbase = { use = "adamm" }\n' + S,
                               "optimizer.base.use: unknown optimizer 'adamm'; did you mean 'adam'?", (10, 16)),
    'missing_use': (D + '[model]\nwidth = 4\n' + O + S, "model: missing 'use' (which model to use; available: ", (5, 1)),
    'schedule_unknown': (D + M + O + S + 'schedule = "cosin"\n',
                         'stage[0].schedule: must be one of "constant", "cosine", "multistep", "step", got "cosin"', (14, 12)),
    'perturb_unknown': (D + M + '[optimizer]\nuse = "sam"\nperturb = "quantised"\n' + S,
                        'optimizer.perturb: must be one of "quantized", "latent", got "quantised"', (10, 11)),
    # [[quantizer.rule]]
    'rule_unknown_key': (D + M + Q + '[[quantizer.rule]]\nmatch = "conv2"\nbits = 3\n' + O + S,
                         'quantizer.rule[0].bits: unknown key for quantizer.rule (accepted: match, ', (12, 1)),
    'rule_not_an_array': (D + M + '[quantizer]\nuse = "liq"\nrule = 3\n' + O + S,
                          'quantizer.rule: expected an array of tables ([[quantizer.rule]]), got integer', (10, 8)),
    'rule_empty_match': (D + M + Q + '[[quantizer.rule]]\nmatch = ""\nweight_bits = 3\n' + O + S,
                         'quantizer.rule[0].match: an empty glob matches nothing', (11, 9)),
    'rule_glob_unclosed_bracket': (D + M + Q + '[[quantizer.rule]]\nmatch = "conv[12"\nweight_bits = 3\n' + O + S,
                                   "the '[' at character 5 opens a character class that never closes", (11, 9)),
    # stages
    'unknown_stage_kind': (D + M + O + '[[stage]]\nuse = "finetune"\n', "stage[0].use: unknown stage 'finetune' (stages: train, eval, search, export, analyze)", (12, 7)),
    'no_stages': (D + M + O, 'no [[stage]]: add at least one', None),
    'init_of_a_later_stage': (D + M + O + '[[stage]]\nuse = "train"\nepochs = 1\ninit = "stage1"\n' + S,
                              'stage[0].init: "stage1" is not an earlier stage (this is stage 0)', (14, 8)),
    'init_of_an_eval_stage': (D + M + O + '[[stage]]\nuse = "eval"\n' + S + 'init = "stage0"\n',
                              'stage[1].init: "stage0" is an \'eval\' stage, which writes no checkpoint', (16, 8)),
    'quantized_stage_without_quantizer': (D + M + O + '[[stage]]\nuse = "train"\nquantized = true\n',
                                          'stage[0].quantized: true, but the pipeline has no [quantizer]', (13, 13)),
    'train_stage_without_optimizer': (D + M + S, 'missing section [optimizer] (which optimizer to use; available: ', None),
    'missing_data_section': (M + O + S, 'missing section [data] (which dataset to use; available: ', None),
    'group_missing_match': (D + M + O + S + '[[stage.group]]\nlr = 0.1\n', "stage[0].group[0]: missing required key 'match'", (14, 1)),
    'group_glob_unclosed_bracket': (D + M + O + S + '[[stage.group]]\nmatch = "conv[12.weight"\nlr = 0.1\n',
                                    'stage[0].group[0].match: "conv[12.weight": the \'[\' at character 5 opens a character class', (15, 9)),
    # only found when the run starts (paths relative to the folder the run starts in)
    'missing_data_root': ('[data]\nuse = "fashion_mnist"\nroot = "no-such-folder"\n' + M + O + S,
                          'data.root: no-such-folder/train-images-idx3-ubyte.gz: no such file', (3, 8), 'run'),
    'missing_init_checkpoint': (D + M + O + S + 'init = "no-such-checkpoint.pt"\n',
                                'stage[0].init: no-such-checkpoint.pt: no such checkpoint', (14, 8), 'run'),
}

for name, entry in CORPUS.items():
    body, expect, at = entry[:3]
    command = entry[3] if len(entry) > 3 else 'validate'
    header = ['# expect: ' + expect]
    if command != 'validate':
        header.append('# command: ' + command)
    if at:
        header.append('# at: %d:%d' % (at[0] + len(header) + 1, at[1]))
    text = '\n'.join(header) + '\n' + body
    with open(os.path.join(HERE, name + '.toml'), 'wb') as f:
        f.write(text.encode('latin-1'))  # latin-1 keeps the raw bytes the bodies spell with \x escapes
print(len(CORPUS), 'files')
