"""A deliberately unfair model for the tests, in TFX's run_fn contract: a rule on flipper
length that knows only Adelie and Gentoo. Chinstrap penguins live on Dream island only,
so the model is right on Biscoe and Torgersen and wrong on a third of Dream."""

import tensorflow as tf

CLASSES = ["Adelie", "Chinstrap", "Gentoo"]


class Rule(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def serve(self, examples):
        parsed = tf.io.parse_example(
            examples, {"flipper_length_mm": tf.io.FixedLenFeature([1], tf.int64, default_value=[0])}
        )
        flipper = tf.cast(tf.reshape(parsed["flipper_length_mm"], [-1]), tf.float32)
        gentoo = tf.cast(flipper > 206.0, tf.float32)
        probabilities = tf.stack([1.0 - gentoo, tf.zeros_like(gentoo), gentoo], axis=1)
        class_ids = tf.argmax(probabilities, axis=1)
        batch = tf.shape(examples)[0]
        return {
            "probabilities": probabilities,
            "class_ids": class_ids,
            "classes": tf.gather(tf.constant(CLASSES), class_ids),
            "all_classes": tf.tile(tf.constant([CLASSES]), [batch, 1]),
        }


def run_fn(fn_args):
    module = Rule()
    tf.saved_model.save(module, fn_args.serving_model_dir, signatures={"serving_default": module.serve})
    return {"rule": 1.0}
