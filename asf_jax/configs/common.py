"""Defaults shared by every config: the reference recipe of DESIGN.md ("Training")."""

from ml_collections import ConfigDict, config_dict

from asf_jax.specaugment import default_specaugment_config


def base_config() -> ConfigDict:
    """The reference SlowFast recipe on VGG-Sound; other configs change a few fields."""
    config = ConfigDict()
    config.seed = 0

    config.data = ConfigDict()
    config.data.data_dir = "~/tensorflow_datasets"  # where asf_jax.datasets.build wrote VGG-Sound
    config.data.name = "vggsound"  # the dataset in data_dir: vggsound, or the --name of your own
    config.data.config = "slowfast"  # builder config: slowfast, slow, or *_float16
    config.data.train_split = "train"
    config.data.eval_split = "test"
    config.data.worker_count = 0  # grain worker processes for the training input
    config.data.read_threads = 4
    config.data.short_clips = ""  # "" = the dataset's recipe (edge), or tile, floor, zero

    config.model = ConfigDict()
    config.model.arch = "slowfast"
    config.model.depth = 50
    config.model.width = 64
    config.model.alpha = 4
    config.model.beta_inv = 8
    config.model.fusion_channel_ratio = 2
    config.model.fusion_kernel = 7
    config.model.dropout_rate = 0.5
    config.model.stage_blocks = config_dict.placeholder(tuple)  # tiny models only

    config.specaugment = default_specaugment_config()

    config.train = ConfigDict()
    config.train.enable = True
    config.train.num_epochs = 50
    config.train.num_steps = config_dict.placeholder(int)  # overrides num_epochs when set
    config.train.global_batch_size = 32
    config.train.dtype = "float32"  # or bfloat16: compute dtype; parameters stay float32
    config.train.init_from = ""  # asf_jax checkpoint or .pyth to fine-tune from
    config.train.log_every_steps = 50
    config.train.checkpoint_every_steps = 1000
    config.train.keep_checkpoints = 3
    config.train.precise_bn_batches = 200  # 0 disables the re-estimation before evaluation
    config.train.profile_steps = 0  # trace this many steps with jax.profiler into WORKDIR/profile

    config.optim = ConfigDict()
    config.optim.learning_rate = 0.01
    config.optim.momentum = 0.9
    config.optim.nesterov = True
    config.optim.weight_decay = 1e-4  # not on BatchNorm scale/shift
    config.optim.schedule = "steps"  # steps (x decay_factor at decay_epochs) or cosine
    config.optim.decay_epochs = (30, 40)
    config.optim.decay_factor = 0.1
    config.optim.warmup_epochs = 0.0
    config.optim.clip_norm = config_dict.placeholder(float)

    config.lep = ConfigDict()  # Label Embeddings Projection head (DESIGN.md)
    config.lep.enable = False
    config.lep.lam = 0.5  # loss = (1 - lam) * CE + lam * MSE(projection, class-name embedding)
    config.lep.loss = "mse"  # the embedding term: mse (the thesis), cosine, contrastive
    config.lep.temperature = 0.07  # of the contrastive term
    config.lep.source = "logits"  # the projection reads the logits (the thesis) or "features"
    config.lep.lam_warmup_epochs = 0.0  # lam ramps up linearly from 0 over these epochs
    config.lep.embeddings = ""  # .npz from scripts/embed_labels.py; "" = embed the class names now
    config.lep.encoder = "glove-6b-50d"  # with embeddings="": glove-6b-50d, minilm, glove:PATH, ...
    config.lep.templates = ()  # sentence encoders: prompts such as "the sound of {label}"
    config.lep.held_out_classes = 0  # K > 0: K classes (chosen by seed) kept out of training
    config.lep.held_out = ""  # or the classes kept out by name: "viola,tenor sax"

    config.finetune = ConfigDict()  # with train.init_from (asf_jax/configs/finetune.py)
    config.finetune.freeze_backbone = False  # linear probe: only the heads learn, BN frozen too
    config.finetune.backbone_lr_multiplier = 1.0  # backbone LR over the heads' (0: frozen)
    config.finetune.freeze_batch_stats = False  # keep the initial BatchNorm statistics

    config.mixup = ConfigDict()
    config.mixup.rate = 0.0  # probability that a training batch is mixed
    config.mixup.alpha = 0.2  # lambda ~ Beta(alpha, alpha)

    config.eval = ConfigDict()
    config.eval.every_epochs = 2
    config.eval.global_batch_size = 32
    config.eval.checkpoint = ""  # evaluation only: asf_jax checkpoint or .pyth

    config.wandb = ConfigDict()
    config.wandb.project = ""  # set to log to Weights & Biases (if installed)
    config.wandb.entity = ""
    return config
